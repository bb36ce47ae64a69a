"""Tests of jaxvssl.models.resnet3d: R3D / R(2+1)D layouts, widths, dtypes, parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl.models import get_backbone
from jaxvssl.models.resnet3d import ResNet3D, r2plus1d_mid_width
from tests.test_models import (
  CLIP,
  TINY,
  abstract_init,
  abstract_init_with_output,
  num_params,
  numpy_variables,
)


def test_r3d18_stage_shapes_at_paper_resolution():
  x = jnp.zeros((2, 16, 112, 112, 3))
  for stem, expected in [
    (
      'torchvision',
      {
        'stem': (16, 56, 56, 64),
        'stage1': (16, 56, 56, 64),
        'stage2': (8, 28, 28, 128),
        'stage3': (4, 14, 14, 256),
        'stage4': (2, 7, 7, 512),
      },
    ),
    (
      'mlfo',
      {
        # The authors' r3d.py: max-pool (1,3,3) stride (1,2,2), so time is kept at stage 1.
        'stem': (16, 28, 28, 64),
        'stage1': (16, 28, 28, 64),
        'stage2': (8, 14, 14, 128),
        'stage3': (4, 7, 7, 256),
        'stage4': (2, 4, 4, 512),
      },
    ),
  ]:
    model = get_backbone('r3d18', stem=stem)
    (feat, stages), _ = abstract_init_with_output(model, x, train=False, return_stages=True)
    assert feat.shape == (2, 512) and stages['pool5'].shape == (2, 512)
    assert {k: v.shape[1:] for k, v in stages.items() if k != 'pool5'} == expected


@pytest.mark.parametrize('name', ['r3d10', 'r3d18'])
def test_mlfo_stem_keeps_every_frame_timestep_at_stage_1(name):
  """The MLFO authors' stem pools (1,3,3) with stride (1,2,2): 16 frames give 16/8/4/2 timesteps
  at stages 1-4 (what MLFO's per-timestep heads and timestamp retrieval are built for), and the
  stem halves only the spatial side."""
  model = get_backbone(name, stem='mlfo', width_multiplier=TINY)
  x = jnp.zeros((1, 16, 32, 32, 3))
  (_, stages), _ = abstract_init_with_output(model, x, train=False, return_stages=True)
  timesteps = [stages[k].shape[1] for k in ('stem', 'stage1', 'stage2', 'stage3', 'stage4')]
  assert timesteps == [16, 16, 8, 4, 2]
  assert stages['stem'].shape[2:4] == (8, 8)  # conv stride 2, then pool stride 2


def test_bfloat16_computation_keeps_float32_params_and_stats():
  model = get_backbone('r3d10', width_multiplier=TINY, dtype=jnp.bfloat16)
  out, variables = abstract_init_with_output(model, jnp.zeros(CLIP), train=False)
  assert out.dtype == jnp.bfloat16 and out.shape == (2, 64)
  assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def test_r2plus1d_mid_width_formula():
  # torchvision's widths for the R(2+1)D-18 blocks.
  pairs = [(64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
  assert [r2plus1d_mid_width(i, o) for i, o in pairs] == [144, 230, 288, 460, 576, 921, 1152]
  variables = abstract_init(get_backbone('r2plus1d18'), jnp.zeros((1, 8, 32, 32, 3)), train=False)
  p = variables['params']
  assert p['stem_conv_s']['conv']['kernel'].shape == (1, 7, 7, 3, 45)
  assert p['stem_conv_t']['conv']['kernel'].shape == (3, 1, 1, 45, 64)
  block = p['stage2_block0']
  assert block['conv1_s']['conv']['kernel'].shape == (1, 3, 3, 64, 230)
  assert block['conv1_t']['conv']['kernel'].shape == (3, 1, 1, 230, 128)
  # torchvision uses the block's (in, out) middle width for BOTH convs of the block.
  assert block['conv2_s']['conv']['kernel'].shape == (1, 3, 3, 128, 230)
  assert p['stage2_block1']['conv2_s']['conv']['kernel'].shape == (1, 3, 3, 128, 288)


# torchvision's published totals minus the Kinetics-400 classifier (fc: 512*400+400 = 205,200).
@pytest.mark.parametrize(
  'name,expected',
  [
    ('r3d18', 33_371_472 - 205_200),  # 33,166,272
    ('r2plus1d18', 31_505_325 - 205_200),  # 31,300,125
  ],
)
def test_parameter_counts(name, expected):
  x = jnp.zeros((1, 16, 112, 112, 3))
  assert num_params(abstract_init(get_backbone(name), x, train=False)) == expected


@pytest.mark.parametrize('stem_temporal, straddles', [((2, 2), False), ((3, 2), True)])
def test_stem_temporal_kernel_2_sees_one_frame_group(stem_temporal, straddles):
  """With (kernel 2, stride 2) each stem output reads exactly frames 2t, 2t+1 (SCVRL's kt=2 token,
  Table 8e); with (3, 2) (padding 1: output t reads frames 2t-1..2t+1) a change in frame 1, the
  second frame of group 0, also reaches the output of group 1."""
  model = ResNet3D(stage_sizes=(1, 1, 1, 1), width_multiplier=1 / 8, stem_temporal=stem_temporal)
  x = np.random.default_rng(0).normal(size=(1, 8, 16, 16, 3)).astype(np.float32)
  variables = numpy_variables(model, jnp.asarray(x), return_stages=True)
  stem = lambda clip: model.apply(variables, jnp.asarray(clip), return_stages=True)[1]['stem']
  before = stem(x)
  assert before.shape[1] == 4  # one output per 2-frame group
  x_changed = x.copy()
  x_changed[:, 1] += 1.0
  moved = np.abs(np.asarray(stem(x_changed) - before)).max(axis=(0, 2, 3, 4)) > 1e-6  # [T']
  assert moved[0] and not moved[2] and not moved[3]
  assert moved[1] == straddles


def test_stem_temporal_is_refused_outside_the_r3d_stem():
  model = ResNet3D(conv_type='2plus1d', width_multiplier=1 / 8, stem_temporal=(2, 2))
  with pytest.raises(ValueError, match='stem_temporal applies to the R3D torchvision stem only'):
    abstract_init(model, jnp.zeros((1, 8, 16, 16, 3)))
