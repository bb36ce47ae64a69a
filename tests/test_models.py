"""Tests of the jaxvssl.models package itself: the registry and the contract every backbone keeps.

The tests of one model module are in tests/test_models_<module>.py; they share the helpers below.
Shapes and parameter counts use `jax.eval_shape` (tracing only, no compute). Where values are
needed, variables are filled with NumPy instead of `module.init`: threefry RNG kernels take very
long to compile on this CPU, and the test only needs arbitrary finite weights.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxvssl.models as models
from jaxvssl.models import feature_dim, get_backbone, get_frame_encoder
from jaxvssl.models.mvit import MViT

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


# ------------------------------------------------------------------------ backbone contract


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
