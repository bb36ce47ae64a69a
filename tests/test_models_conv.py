"""Tests of jaxvssl.models.conv: every CPU formulation equals `lax.conv_general_dilated`.

The conv configurations (kernel, strides, padding, groups) are collected from every registered
backbone and frame encoder by intercepting their `Conv` modules during `jax.eval_shape` of an
init, so a new layer shape in a backbone is tested without editing this file. Each one is run
on a small input through every implementation that can compute it, and the output and BOTH
gradients (input and kernel) are compared with a direct `lax.conv_general_dilated`, jitted on 1
device and on 8 fake CPU devices with the batch sharded over them (tests/conftest.py makes 8).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import jaxvssl.models as models
from jaxvssl.models import conv as conv_lib
from jaxvssl.models import motion_excitation, mvit, norm
from jaxvssl.models.motion_excitation import MotionExcitation
from tests.test_models import CLIP, TINY

BATCH = 8  # divisible by the 8 fake devices

# ------------------------------------------------------------------------- the configurations


def _freeze(value: Any) -> Any:
  if isinstance(value, (list, tuple)):
    return tuple(_freeze(v) for v in value)
  return value


def _backbone_builds() -> list[tuple[str, nn.Module, tuple[int, ...], dict[str, Any]]]:
  """(label, module, input shape, call kwargs) for every backbone, frame encoder and variant."""
  builds = []
  for name in models.available_backbones():
    kwargs = dict(width_multiplier=TINY) if not name.startswith('mvit') else {}
    builds.append((name, models.get_backbone(name, **kwargs), CLIP, {}))
  builds.append(
    ('r3d18 mlfo stem', models.get_backbone('r3d18', stem='mlfo', width_multiplier=TINY), CLIP, {})
  )
  builds.append(('r3d18 residual', models.get_backbone('r3d18', 'residual'), CLIP, {}))
  for name in models.available_frame_encoders():
    builds.append((name, models.get_frame_encoder(name, width_multiplier=TINY), (2, 32, 32, 3), {}))
  builds.append(
    ('motion_excitation', MotionExcitation(reduction=4), (2, 4, 8, 8, 16), dict(train=False))
  )
  return builds


@functools.lru_cache(maxsize=None)
def traced_builds() -> tuple[dict[tuple, list[str]], dict[str, Any]]:
  """Abstract inits of every model (as the package builds them) and the conv configurations.

  Returns `({(kernel_size, strides, padding, depthwise): [where it is used]}, {label: abstract
  variables})`; the configurations are found by intercepting every `Conv` call of the inits.
  """
  configs: dict[tuple, list[str]] = {}
  variables = {}
  for label, module, shape, kwargs in _backbone_builds():

    def interceptor(next_fun, args, kw, context, label=label):
      mod = context.module
      if context.method_name == '__call__' and isinstance(mod, (conv_lib.Conv, nn.Conv)):
        x = args[0]
        depthwise = mod.feature_group_count > 1
        assert not depthwise or mod.feature_group_count == x.shape[-1] == mod.features
        n = len(mod.kernel_size)
        key = (
          tuple(mod.kernel_size),
          conv_lib.as_tuple(mod.strides, n, 'strides'),
          _freeze(mod.padding),
          depthwise,
        )
        configs.setdefault(key, []).append(f'{label}: {"/".join(mod.path)}')
      return next_fun(*args, **kw)

    with nn.intercept_methods(interceptor):
      variables[label] = _abstract_variables(module, shape, kwargs)
  return configs, variables


def _abstract_variables(module, shape, kwargs):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(lambda x: module.init(jax.random.key(0), x, **kwargs), x)


# Every conv configuration of the registered models: (kernel, strides, padding, depthwise).
# `test_backbone_configs_are_the_ones_the_models_use` keeps this list equal to what the models do.
_PAD1 = ((1, 1), (1, 1), (1, 1))
BACKBONE_CONFIGS = [
  ((3, 7, 7), (1, 2, 2), ((1, 1), (3, 3), (3, 3)), False),  # R3D stem
  ((7, 7, 7), (1, 2, 2), ((3, 3), (3, 3), (3, 3)), False),  # R3D 'mlfo' stem
  ((1, 7, 7), (1, 2, 2), ((0, 0), (3, 3), (3, 3)), False),  # R(2+1)D stem, spatial
  ((3, 1, 1), (1, 1, 1), ((1, 1), (0, 0), (0, 0)), False),  # R(2+1)D / S3D temporal
  ((3, 1, 1), (2, 1, 1), ((1, 1), (0, 0), (0, 0)), False),  # R(2+1)D temporal, strided
  ((1, 3, 3), (1, 1, 1), ((0, 0), (1, 1), (1, 1)), False),  # R(2+1)D / S3D spatial
  ((1, 3, 3), (1, 2, 2), ((0, 0), (1, 1), (1, 1)), False),  # R(2+1)D spatial, strided
  ((3, 3, 3), (1, 1, 1), _PAD1, False),  # R3D, C3D
  ((3, 3, 3), (2, 2, 2), _PAD1, False),  # R3D strided
  ((1, 1, 1), (1, 1, 1), ((0, 0), (0, 0), (0, 0)), False),  # S3D 1x1x1
  ((1, 1, 1), (2, 2, 2), ((0, 0), (0, 0), (0, 0)), False),  # video ResNet shortcuts
  ((3, 7, 7), (2, 2, 2), ((1, 1), (3, 3), (3, 3)), False),  # S3D Conv1a
  ((3, 7, 7), (2, 4, 4), ((1, 1), (3, 3), (3, 3)), False),  # MViT-B patch embed (with bias)
  ((2, 7, 7), (2, 4, 4), ((0, 0), (3, 3), (3, 3)), False),  # SCVRL / mvit_tiny patch embed
  ((3, 3, 3), (1, 1, 1), _PAD1, True),  # MViT pooling (depthwise)
  ((3, 3, 3), (1, 2, 2), _PAD1, True),
  ((3, 3, 3), (1, 4, 4), _PAD1, True),
  ((3, 3, 3), (1, 8, 8), _PAD1, True),  # MViT adaptive kv stride: kernel < stride
  ((1, 1, 1), (1, 1, 1), 'SAME', False),  # motion excitation reduce / expand
  ((1, 3, 3), (1, 1, 1), 'SAME', True),  # motion excitation transform (depthwise)
  ((7, 7), (2, 2), ((3, 3), (3, 3)), False),  # 2D ResNet stem
  ((3, 3), (1, 1), ((1, 1), (1, 1)), False),
  ((3, 3), (2, 2), ((1, 1), (1, 1)), False),
  ((1, 1), (1, 1), ((0, 0), (0, 0)), False),  # ResNet-50 bottleneck
  ((1, 1), (2, 2), ((0, 0), (0, 0)), False),  # 2D shortcuts
]

# Hand-made configurations the models do not use but `conv` accepts: string and int paddings,
# asymmetric and negative padding, a non-depthwise grouped conv (see `_case`), 1D.
EXTRA_CONFIGS = [
  ((3, 3, 3), (2, 2, 2), 'SAME', False),
  ((3, 3, 3), (1, 2, 2), 'VALID', False),
  ((3, 5, 5), (2, 2, 1), 1, False),
  ((2, 3, 3), (1, 2, 2), ((1, 0), (0, 2), (-1, 1)), False),
  ((1, 1, 1), (2, 1, 2), ((0, 1), (-1, 0), (1, 1)), False),
  ((3, 3), (2, 2), 'SAME', False),
  ((3,), (2,), ((1, 1),), False),
]


def test_backbone_configs_are_the_ones_the_models_use():
  """BACKBONE_CONFIGS lists exactly the conv configurations of every registered model."""
  collected, _ = traced_builds()
  missing = sorted(set(collected) - set(BACKBONE_CONFIGS), key=repr)
  assert not missing, 'add to BACKBONE_CONFIGS: ' + '; '.join(
    f'{c} ({collected[c][0]})' for c in missing
  )
  assert not set(BACKBONE_CONFIGS) - set(collected), 'no model uses these any more'


# ------------------------------------------------------------------------------ the checks


def _case(config: tuple, seed: int = 0):
  """Random `x [BATCH, *spatial, Cin]`, `kernel`, cotangent, and conv kwargs for `config`."""
  kernel_size, strides, padding, depthwise = config
  n = len(kernel_size)
  c_in, c_out, groups = (4, 4, 4) if depthwise else (3, 5, 1)
  if config in EXTRA_CONFIGS and n == 3 and kernel_size == (3, 3, 3) and strides[0] == 1:
    c_in, c_out, groups = 4, 6, 2  # a grouped, non-depthwise conv
  spatial = tuple(k + 2 * s + 1 for k, s in zip(kernel_size, strides))
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((BATCH,) + spatial + (c_in,)).astype(np.float32)
  fan_in = int(np.prod(kernel_size)) * c_in // groups
  kernel = (rng.standard_normal(kernel_size + (c_in // groups, c_out)) / np.sqrt(fan_in)).astype(
    np.float32
  )
  pads = conv_lib.explicit_padding(padding, spatial, kernel_size, strides)
  kwargs = dict(strides=strides, padding=padding, feature_group_count=groups)
  return x, kernel, pads, kwargs


def _reference(x, kernel, pads, kwargs):
  """`lax.conv_general_dilated` (channels last), its output and VJP."""
  n = kernel.ndim - 2
  spatial = 'DHW'[-n:]

  def f(x, kernel):
    return lax.conv_general_dilated(
      x,
      kernel,
      kwargs['strides'],
      pads,
      dimension_numbers=(f'N{spatial}C', f'{spatial}IO', f'N{spatial}C'),
      feature_group_count=kwargs['feature_group_count'],
      precision=lax.Precision.HIGHEST,
    )

  return f


def _value_and_grads(f, x, kernel, ct):
  y, vjp = jax.vjp(f, x, kernel)
  dx, dk = vjp(ct)
  return y, dx, dk


def _assert_close(actual, expected, what):
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
  scale = max(1.0, float(np.max(np.abs(expected))))
  np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=2e-5 * scale, err_msg=what)


@pytest.fixture(scope='module')
def meshes():
  devices = jax.devices()
  if len(devices) < 8:
    pytest.skip('needs 8 (fake) devices: XLA_FLAGS=--xla_force_host_platform_device_count=8')
  return {1: Mesh(np.asarray(devices[:1]), ('data',)), 8: Mesh(np.asarray(devices[:8]), ('data',))}


@pytest.mark.parametrize('config', BACKBONE_CONFIGS + EXTRA_CONFIGS, ids=repr)
def test_every_impl_matches_lax_outputs_and_gradients(config, meshes):
  x, kernel, pads, kwargs = _case(config)
  ref = _reference(x, kernel, pads, kwargs)
  y_shape = jax.eval_shape(ref, x, kernel).shape
  ct = np.random.default_rng(1).standard_normal(y_shape).astype(np.float32)
  expected = jax.jit(functools.partial(_value_and_grads, ref))(x, kernel, ct)

  groups = kwargs['feature_group_count']
  impls = conv_lib.applicable_impls(x.shape, kernel.shape, groups)
  chosen = conv_lib.resolve_impl(x, kernel.shape, groups)  # what 'auto' runs on CPU
  assert 'xla' in impls and chosen in impls
  # Every formulation on 1 device; the one 'auto' picks also with the batch over 8 devices.
  runs = [(impl, 1) for impl in impls] + [(chosen, 8)]
  for impl, num_devices in runs:
    mesh = meshes[num_devices]
    f = functools.partial(_conv_impl, impl=impl, **kwargs)
    step = jax.jit(functools.partial(_value_and_grads, f))
    sharded, replicated = NamedSharding(mesh, P('data')), NamedSharding(mesh, P())
    got = step(
      jax.device_put(x, sharded), jax.device_put(kernel, replicated), jax.device_put(ct, sharded)
    )
    assert got[1].sharding.is_equivalent_to(sharded, x.ndim)
    for name, a, b in zip(('output', 'd input', 'd kernel'), got, expected):
      _assert_close(a, b, f'{config} impl={impl} devices={num_devices}: {name}')


def _conv_impl(x, kernel, *, impl, **kwargs):
  return conv_lib.conv(x, kernel, precision=lax.Precision.HIGHEST, impl=impl, **kwargs)


def test_eager_call_matches_jit():
  x, kernel, pads, kwargs = _case(((3, 7, 7), (1, 2, 2), ((1, 1), (3, 3), (3, 3)), False))
  eager = conv_lib.conv(x, kernel, **kwargs)
  _assert_close(eager, jax.jit(lambda x, k: conv_lib.conv(x, k, **kwargs))(x, kernel), 'eager')


@pytest.mark.parametrize('kernel_size', [(3, 3, 3), (3, 1, 1)])
def test_bfloat16_fold_matches_lax(kernel_size):
  """bfloat16 in, bfloat16 out (kernel gradients accumulate in float32)."""
  x, kernel, pads, kwargs = _case((kernel_size, (2, 2, 2), 'SAME', False))
  xb, kb = jnp.asarray(x, jnp.bfloat16), jnp.asarray(kernel, jnp.bfloat16)
  ct = jnp.ones(jax.eval_shape(_reference(xb, kb, pads, kwargs), xb, kb).shape, jnp.bfloat16)
  f = functools.partial(conv_lib.conv, impl='fold', **kwargs)
  got = jax.jit(functools.partial(_value_and_grads, f))(xb, kb, ct)
  expected = _value_and_grads(_reference(xb, kb, pads, kwargs), xb, kb, ct)
  for a, b in zip(got, expected):
    assert a.dtype == jnp.bfloat16
    scale = float(jnp.max(jnp.abs(b.astype(jnp.float32))))
    np.testing.assert_allclose(np.float32(a), np.float32(b), rtol=0.05, atol=0.02 * scale)


# -------------------------------------------------------------------------- choosing an impl


def test_auto_chooses_per_platform_and_shape(monkeypatch):
  x5 = jax.ShapeDtypeStruct((2, 4, 8, 8, 3), jnp.float32)
  assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1) == 'fold'
  assert conv_lib.resolve_impl(x5, (1, 1, 1, 3, 8), 1) == 'dot'
  assert conv_lib.resolve_impl(x5, (3, 3, 3, 1, 3), 3) == 'depthwise'
  x4 = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)
  assert conv_lib.resolve_impl(x4, (3, 3, 3, 8), 1) == 'fold'  # 2D: a 3D conv of one frame
  assert conv_lib.resolve_impl(x4, (1, 1, 3, 8), 1) == 'dot'
  x6 = jax.ShapeDtypeStruct((2, 4, 8, 8, 6), jnp.float32)
  assert conv_lib.resolve_impl(x6, (3, 3, 3, 2, 6), 3) == 'xla'  # grouped, not depthwise
  x1 = jax.ShapeDtypeStruct((2, 8, 3), jnp.float32)
  assert conv_lib.resolve_impl(x1, (3, 3, 8), 1) == 'xla'  # 1D
  monkeypatch.setattr(conv_lib, '_platform', lambda x: 'gpu')
  assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1) == 'xla'
  assert conv_lib.resolve_impl(x5, (1, 1, 1, 3, 8), 1) == 'xla'


def test_forcing_the_implementation(monkeypatch):
  x5 = jax.ShapeDtypeStruct((2, 4, 8, 8, 3), jnp.float32)
  monkeypatch.setenv(conv_lib.ENV_VAR, 'xla')
  assert conv_lib.requested_impl() == 'xla'
  assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1) == 'xla'
  with conv_lib.conv_impl('auto'):  # the context manager wins over the environment
    assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1) == 'fold'
  assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1, impl='fold') == 'fold'  # argument wins
  monkeypatch.setenv(conv_lib.ENV_VAR, 'auto')
  with conv_lib.conv_impl('xla'):
    assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1) == 'xla'
  assert conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1) == 'fold'
  monkeypatch.setenv(conv_lib.ENV_VAR, 'fast')
  with pytest.raises(ValueError, match='JAXVSSL_CONV_IMPL'):
    conv_lib.requested_impl()
  with pytest.raises(ValueError, match='conv_impl'):
    with conv_lib.conv_impl('fold'):
      pass
  with pytest.raises(ValueError, match='cannot compute'):
    conv_lib.resolve_impl(x5, (3, 7, 7, 3, 8), 1, impl='dot')


def test_conv_rejects_bad_arguments():
  x = jnp.zeros((2, 4, 8, 8, 3))
  with pytest.raises(ValueError, match='input channels'):
    conv_lib.conv(x, jnp.zeros((3, 3, 3, 4, 8)))
  with pytest.raises(ValueError, match='spatial axes'):
    conv_lib.conv(x, jnp.zeros((3, 3, 3, 8)))
  with pytest.raises(ValueError, match='not supported'):
    conv_lib.conv(x, jnp.zeros((3, 3, 3, 3, 8)), padding='CIRCULAR')
  with pytest.raises(ValueError, match='3 entries'):
    conv_lib.conv(x, jnp.zeros((3, 3, 3, 3, 8)), strides=(1, 2))


# ---------------------------------------------------------------- Conv: a drop-in for nn.Conv


@pytest.mark.parametrize(
  'kwargs, shape',
  [
    (
      dict(features=5, kernel_size=(3, 7, 7), strides=(1, 2, 2), padding=((1, 1), (3, 3), (3, 3))),
      (2, 4, 9, 9, 3),
    ),
    (
      dict(
        features=4, kernel_size=(1, 3, 3), padding='SAME', feature_group_count=4, use_bias=False
      ),
      (2, 3, 6, 6, 4),
    ),
    (dict(features=6, kernel_size=(1, 1, 1), strides=2, use_bias=False), (2, 4, 6, 6, 3)),
    (
      dict(features=6, kernel_size=(3, 3), strides=None, padding=1, dtype=jnp.bfloat16),
      (2, 6, 6, 3),
    ),
    (dict(features=6, kernel_size=(3, 3, 3), padding='VALID'), (3, 2, 4, 5, 5, 2)),  # 2 batch axes
    (dict(features=6, kernel_size=(3, 3)), (5, 5, 2)),  # no batch axis
  ],
)
def test_conv_module_is_a_drop_in_for_flax_conv(kwargs, shape):
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
  ours = conv_lib.Conv(**kwargs)
  theirs = nn.Conv(**kwargs)
  key = jax.random.key(0)
  variables = ours.init(key, x)
  expected_vars = theirs.init(key, x)
  assert jax.tree.structure(variables) == jax.tree.structure(expected_vars)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(expected_vars)):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # same names, same RNG streams -> same initial values
  y, y_ref = ours.apply(variables, x), theirs.apply(variables, x)
  assert y.dtype == y_ref.dtype and y.shape == y_ref.shape
  tol = 0.05 if y.dtype == jnp.bfloat16 else 2e-5
  np.testing.assert_allclose(np.float32(y), np.float32(y_ref), rtol=tol, atol=tol)


# ------------------------------------------------------- backbones: the same variables as before


def _with_flax_conv(monkeypatch):
  """Builds the backbones as they were before jaxvssl.models.conv: with flax's nn.Conv."""
  for module in (norm, mvit, motion_excitation):
    monkeypatch.setattr(module, 'Conv', nn.Conv)


def test_backbone_variables_unchanged_by_the_conv_entry_point(monkeypatch):
  _, ours = traced_builds()
  _with_flax_conv(monkeypatch)
  for label, module, shape, kwargs in _backbone_builds():
    before = _abstract_variables(module, shape, kwargs)
    assert jax.tree.structure(ours[label]) == jax.tree.structure(before), label
    assert jax.tree.map(lambda a: (a.shape, a.dtype), ours[label]) == jax.tree.map(
      lambda a: (a.shape, a.dtype), before
    ), label


def test_r3d_variable_names_and_shapes():
  """The checkpoint layout of R3D-10 / R3D-18 (spelled out, independent of any build)."""
  for name, blocks in (('r3d10', 1), ('r3d18', 2)):
    variables = _abstract_variables(models.get_backbone(name), CLIP, {})
    params = variables['params']
    assert params['stem_conv']['conv']['kernel'].shape == (3, 7, 7, 3, 64)
    assert set(params['stem_conv']['conv']) == {'kernel'}
    assert set(params['stem_conv']['bn']) == {'scale', 'bias'}
    assert set(variables['batch_stats']['stem_conv']['bn']) == {'mean', 'var'}
    expected = {'stem_conv'}
    for i, width in enumerate((64, 128, 256, 512)):
      for j in range(blocks):
        block = params[f'stage{i + 1}_block{j}']
        expected.add(f'stage{i + 1}_block{j}')
        c_in = width if (j > 0 or i == 0) else width // 2
        assert block['conv1']['conv']['kernel'].shape == (3, 3, 3, c_in, width)
        assert block['conv2']['conv']['kernel'].shape == (3, 3, 3, width, width)
        if i > 0 and j == 0:
          assert block['downsample']['conv']['kernel'].shape == (1, 1, 1, c_in, width)
          assert set(block) == {'conv1', 'conv2', 'downsample'}
        else:
          assert set(block) == {'conv1', 'conv2'}
    assert set(params) == expected
