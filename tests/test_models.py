"""Tests for jaxvssl/models: registry, shapes, layouts, parameter counts, transformer, heads.

Shapes and parameter counts use `jax.eval_shape` (tracing only, no compute). Where values are
needed, variables are filled with NumPy instead of `module.init`: threefry RNG kernels take very
long to compile on this CPU, and the test only needs arbitrary finite weights.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxvssl.models as models
from jaxvssl.models import (
  FrameEncoderTransformer,
  MLPHead,
  VideoTransformer,
  feature_dim,
  get_backbone,
  get_frame_encoder,
)
from jaxvssl.models.mvit import MViT
from jaxvssl.models.resnet3d import r2plus1d_mid_width
from jaxvssl.models.residual import ResidualInput, frame_differences

KEY = jax.random.key(0)
TINY = 1 / 8
CLIP = (2, 8, 32, 32, 3)  # smallest clip every backbone handles


def abstract_init(model, *args, **kwargs):
  """Shapes/dtypes of `model.init(...)` without computing anything."""
  return jax.eval_shape(lambda: model.init(KEY, *args, **kwargs))


def abstract_init_with_output(model, *args, **kwargs):
  """Shapes/dtypes of `model.init_with_output(...)`: (output, variables)."""
  return jax.eval_shape(lambda: model.init_with_output(KEY, *args, **kwargs))


def num_params(variables) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables['params']))


def numpy_variables(model, *args, seed=0, **kwargs):
  """Arbitrary finite variables with the shapes `model.init` would give."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = getattr(path[-1], 'key', '')
    if name in ('scale', 'var'):
      return np.ones(s.shape, np.float32)
    if name in ('bias', 'mean'):
      return np.zeros(s.shape, np.float32)
    fan_in = max(1, int(np.prod(s.shape[:-1])))
    return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract_init(model, *args, **kwargs))


# --------------------------------------------------------------------------------- registry


def test_registry_names_and_errors():
  assert set(models.available_backbones()) >= {
    'c3d',
    'r3d10',
    'r3d18',
    'r3d34',
    'r2plus1d10',
    'r2plus1d18',
    's3d',
    'mvit_b',
    'mvit_b_scvrl',
    'mvit_tiny',
  }
  assert models.available_frame_encoders() == ('resnet10', 'resnet18', 'resnet50')
  with pytest.raises(ValueError, match=r"unknown backbone 'r3d50'.*'r2plus1d18'"):
    get_backbone('r3d50')
  with pytest.raises(ValueError, match=r"unknown frame encoder 'vgg'.*'resnet50'"):
    get_frame_encoder('vgg')
  with pytest.raises(ValueError, match=r"unknown kwargs \['widht'\]"):
    get_backbone('r3d18', widht=0.5)
  # LayerNorm models accept (and ignore) the BatchNorm kwargs every caller passes.
  assert isinstance(get_backbone('mvit_b', bn_groups=8, width_multiplier=0.5), MViT)
  assert feature_dim('r3d18') == 512 and feature_dim('r3d18', TINY) == 64
  assert feature_dim('s3d') == 1024 and feature_dim('mvit_b') == 768
  assert feature_dim('resnet50') == 2048 and feature_dim('c3d', 1 / 16) == 32


def test_residual_input_feeds_frame_differences_to_the_backbone():
  x = jax.random.normal(KEY, CLIP)
  np.testing.assert_array_equal(frame_differences(x), np.asarray(x)[:, 1:] - np.asarray(x)[:, :-1])
  with pytest.raises(ValueError, match=r'T >= 2'):
    frame_differences(x[:, :1])
  with pytest.raises(ValueError, match=r"unknown input_mode 'flow'"):
    get_backbone('r3d10', input_mode='flow')
  plain = get_backbone('r3d10', width_multiplier=TINY)
  wrapped = get_backbone('r3d10', input_mode='residual', width_multiplier=TINY)
  assert isinstance(wrapped, ResidualInput) and wrapped.feature_dim == plain.feature_dim
  variables = jax.jit(lambda: wrapped.init(KEY, x, train=False))()
  inner = {k: v['backbone'] for k, v in variables.items()}
  np.testing.assert_allclose(
    wrapped.apply(variables, x, train=False),
    plain.apply(inner, frame_differences(x), train=False),
    rtol=1e-6,
  )
  # A constant offset (a static background) vanishes from the input.
  np.testing.assert_allclose(
    wrapped.apply(variables, x + 3.0, train=False),
    wrapped.apply(variables, x, train=False),
    rtol=1e-4,
    atol=1e-5,
  )
  _, stages = wrapped.apply(variables, x, train=False, return_stages=True)
  assert stages['stem'].shape[1] == CLIP[1] - 1


# ----------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize('name', models.available_backbones())
def test_backbone_shapes(name):
  model = get_backbone(name, width_multiplier=TINY)
  (feat, stages), variables = abstract_init_with_output(
    model, jnp.zeros(CLIP), train=True, return_stages=True
  )
  d = feature_dim(name, TINY)
  assert feat.shape == (2, d) and feat.dtype == jnp.float32
  assert set(stages) == {'stem', 'stage1', 'stage2', 'stage3', 'stage4', 'pool5'}
  assert stages['pool5'].shape == (2, d)
  for key in ('stem', 'stage1', 'stage2', 'stage3', 'stage4'):
    assert stages[key].ndim == 5 and stages[key].shape[0] == 2, (key, stages[key].shape)
    assert min(stages[key].shape[1:4]) >= 1
  if name.startswith('mvit'):
    assert set(variables) == {'params'}
  else:
    assert set(variables) == {'params', 'batch_stats'}
    assert stages['stage4'].shape[-1] == d


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
        'stem': (8, 28, 28, 64),
        'stage1': (8, 28, 28, 64),
        'stage2': (4, 14, 14, 128),
        'stage3': (2, 7, 7, 256),
        'stage4': (1, 4, 4, 512),
      },
    ),
  ]:
    model = get_backbone('r3d18', stem=stem)
    (feat, stages), _ = abstract_init_with_output(model, x, train=False, return_stages=True)
    assert feat.shape == (2, 512) and stages['pool5'].shape == (2, 512)
    assert {k: v.shape[1:] for k, v in stages.items() if k != 'pool5'} == expected
  c3d, _ = abstract_init_with_output(get_backbone('c3d'), x, train=False)
  assert c3d.shape == (2, 512)


def test_bfloat16_computation_keeps_float32_params_and_stats():
  model = get_backbone('r3d10', width_multiplier=TINY, dtype=jnp.bfloat16)
  out, variables = abstract_init_with_output(model, jnp.zeros(CLIP), train=False)
  assert out.dtype == jnp.bfloat16 and out.shape == (2, 64)
  assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize(
  'name', ['r3d10', 'r2plus1d10', 'c3d', pytest.param('s3d', marks=pytest.mark.slow), 'mvit_tiny']
)
def test_forward_pass_is_finite_and_updates_batch_stats(name):
  model = get_backbone(name, width_multiplier=1 / 16 if name != 'mvit_tiny' else 1.0)
  x = jnp.asarray(np.random.default_rng(1).normal(size=CLIP), jnp.float32)
  variables = numpy_variables(model, x, train=False)
  step = jax.jit(
    lambda v, x: model.apply(
      v,
      x,
      train=True,
      return_stages=True,
      mutable=['batch_stats'],
      rngs={'dropout': jax.random.key(0, impl='rbg')},
    )
  )
  (feat, stages), updates = step(variables, x)
  assert np.all(np.isfinite(np.asarray(feat))) and np.all(np.isfinite(stages['pool5']))
  assert float(jnp.std(feat)) > 0
  if 'batch_stats' in variables:
    changed = jax.tree.map(
      lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
      updates['batch_stats'],
      variables['batch_stats'],
    )
    assert all(jax.tree.leaves(changed))


# ----------------------------------------------------------------------- layouts and counts


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


# torchvision's published totals minus the classifier (Kinetics-400 fc: 512*400+400 = 205,200;
# ImageNet fc: 2048*1000+1000 = 2,049,000 and 512*1000+1000 = 513,000).
@pytest.mark.parametrize(
  'name,builder,expected',
  [
    ('r3d18', get_backbone, 33_371_472 - 205_200),  # 33,166,272
    ('r2plus1d18', get_backbone, 31_505_325 - 205_200),  # 31,300,125
    ('resnet50', get_frame_encoder, 25_557_032 - 2_049_000),  # 23,508,032
    ('resnet18', get_frame_encoder, 11_689_512 - 513_000),  # 11,176,512
    # C3D: 8 bias-free 3x3x3 convs + BN scale/bias, computed by hand.
    (
      'c3d',
      get_backbone,
      27 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 3 * 512 * 512)
      + 2 * (64 + 128 + 2 * 256 + 4 * 512),
    ),
  ],
)
def test_parameter_counts(name, builder, expected):
  x = jnp.zeros((1, 224, 224, 3) if name.startswith('resnet') else (1, 16, 112, 112, 3))
  assert num_params(abstract_init(builder(name), x, train=False)) == expected


def test_mvit_b_facts_and_parameter_count():
  specs = get_backbone('mvit_b').schedule()
  assert len(specs) == 16
  assert [s.stage for s in specs] == [1] + [2] * 2 + [3] * 11 + [4] * 2
  assert [s.dim for s in specs] == [96] + [192] * 2 + [384] * 11 + [768] * 2
  assert [s.num_heads for s in specs] == [1] + [2] * 2 + [4] * 11 + [8] * 2
  assert [i for i, s in enumerate(specs) if s.q_stride == (1, 2, 2)] == [1, 3, 14]
  assert [s.kv_stride for s in specs[:5]] == [(1, 8, 8), (1, 4, 4), (1, 4, 4), (1, 2, 2), (1, 2, 2)]
  assert specs[-1].kv_stride == (1, 1, 1)
  assert specs[0].drop_path == 0.0 and specs[-1].drop_path == pytest.approx(0.2)
  variables = abstract_init(get_backbone('mvit_b'), jnp.zeros((1, 16, 224, 224, 3)), train=False)
  p = variables['params']
  assert p['patch_embed']['kernel'].shape == (3, 7, 7, 3, 96)
  assert p['pos_embed_spatial'].shape == (56, 56, 96) and p['pos_embed_temporal'].shape == (8, 96)
  # MViT-B 16x4: 36.6M with the 400-way classifier (768*400+400 = 307,600).
  assert num_params(variables) + 307_600 == pytest.approx(36.6e6, rel=2e-3)
  scvrl = abstract_init(get_backbone('mvit_b_scvrl'), jnp.zeros((1, 16, 224, 224, 3)), train=False)[
    'params'
  ]
  assert scvrl['patch_embed']['kernel'].shape == (2, 7, 7, 3, 96)
  assert scvrl['pos_embed_temporal'].shape == (8, 96)


def test_mvit_scvrl_tokens_see_disjoint_frame_pairs():
  model = get_backbone('mvit_tiny')
  clip = np.random.default_rng(2).normal(size=(1, 8, 16, 16, 3)).astype(np.float32)
  moved = clip.copy()
  moved[:, 2] += 1.0  # frame 2 belongs to the second pair (frames 2, 3)
  x = jnp.asarray(np.concatenate([clip, moved]))
  variables = numpy_variables(model, x, train=False)
  _, stages = jax.jit(lambda v, x: model.apply(v, x, train=False, return_stages=True))(variables, x)
  diff = np.abs(np.asarray(stages['stem'][0] - stages['stem'][1])).max(axis=(1, 2, 3))
  assert diff[1] > 1e-2 and np.all(diff[[0, 2, 3]] < 1e-5), diff  # (batched-conv rounding)


def test_mvit_position_embeddings_resize_to_other_grids():
  model = get_backbone('mvit_tiny')
  variables = abstract_init(model, jnp.zeros(CLIP), train=False)
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 16, 48, 48, 3))), variables)
  assert out.shape == (2, 128)


# ------------------------------------------------------------------------------ transformer


def test_video_transformer_shapes_and_sizes():
  feats = jnp.zeros((2, 32, 2048))
  cacl = VideoTransformer()  # 768-d, 6 layers, 6 heads
  out, variables = abstract_init_with_output(cacl, feats)
  assert out.shape == (2, 768)
  p = variables['params']
  assert p['pos_embed'].shape == (1, 33, 768) and p['embed']['kernel'].shape == (2048, 768)
  assert len([k for k in p if k.startswith('block')]) == 6
  tiny = VideoTransformer(token_dim=32, num_layers=2, num_heads=2)
  out, variables = abstract_init_with_output(tiny, feats[:, :, :64])
  assert out.shape == (2, 32)
  with pytest.raises(ValueError, match='initialised for 32 tokens but the input has S=16'):
    jax.eval_shape(lambda v: tiny.apply(v, feats[:, :16, :64]), variables)


def test_frozen_frame_encoder_gets_no_gradient():
  encoder = get_frame_encoder('resnet10', width_multiplier=1 / 16)
  frames = jnp.asarray(np.random.default_rng(3).normal(size=(2, 3, 16, 16, 3)), jnp.float32)
  encoder_vars = numpy_variables(encoder, frames[0], train=False)
  model = FrameEncoderTransformer(encoder, VideoTransformer(32, 2, 2))
  variables = numpy_variables(model, frames, encoder_vars)
  assert set(variables) == {'params'} and set(variables['params']) == {'transformer'}

  def loss(params, enc_vars):
    return jnp.sum(model.apply({'params': params}, frames, enc_vars, train=True) ** 2)

  grads, enc_grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables['params'], encoder_vars)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(enc_grads))
  assert any(float(jnp.abs(g).max()) > 0.0 for g in jax.tree.leaves(grads))


# ------------------------------------------------------------------------------------ heads


def test_mlp_heads():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(4, 1024)), jnp.float32)
  linear = MLPHead(hidden_dims=(), out_dim=128)
  out, v = abstract_init_with_output(linear, x)
  assert out.shape == (4, 128) and set(v['params']) == {'out'}
  mlp = MLPHead(hidden_dims=(2048,), out_dim=128, use_bn=True)
  out, v = abstract_init_with_output(mlp, x)
  assert out.shape == (4, 128) and 'batch_stats' in v
  # Per-timestep head on [B, T, C] (mlfo's 1x1x1-conv MLP).
  out, _ = abstract_init_with_output(MLPHead((64,), 128), jnp.zeros((4, 8, 64)))
  assert out.shape == (4, 8, 128)
  # Dropout is active only in training.
  cls = MLPHead(hidden_dims=(512,), out_dim=16, dropout=0.5)
  v = numpy_variables(cls, x)
  rngs = {'dropout': jax.random.key(0, impl='rbg')}
  apply = jax.jit(
    lambda v, x, k: (cls.apply(v, x, train=True, rngs={'dropout': k}), cls.apply(v, x, train=False))
  )
  train_out, eval_out = apply(v, x, rngs['dropout'])
  assert train_out.shape == eval_out.shape == (4, 16)
  assert not np.allclose(train_out, eval_out)
