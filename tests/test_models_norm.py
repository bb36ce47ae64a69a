"""Tests for jaxvssl/models/norm.py: grouped ("ghost") BatchNorm and the shared CNN pieces."""

import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl.models.norm import (
  BatchNorm,
  backbone_outputs,
  conv_bn_factory,
  global_avg_pool,
  spatial_max_temporal_mean,
)


def _input(shape, seed=0):
  rng = np.random.default_rng(seed)
  # Different offsets/scales per sample, so group statistics really differ.
  x = rng.normal(size=shape) * rng.uniform(0.5, 3.0, size=(shape[0],) + (1,) * (len(shape) - 1))
  return (x + rng.normal(size=(shape[0],) + (1,) * (len(shape) - 1)) * 2).astype(np.float32)


def test_grouped_statistics_match_numpy_reference():
  x = _input((8, 2, 3, 3, 5))
  groups, momentum, eps = 4, 0.9, 1e-5
  bn = BatchNorm(num_groups=groups, momentum=momentum, epsilon=eps)
  variables = bn.init(jax.random.key(0), x, use_running_average=False)
  # Non-trivial gamma/beta.
  params = {'scale': jnp.linspace(0.5, 2.0, 5), 'bias': jnp.linspace(-1.0, 1.0, 5)}
  y, updates = bn.apply(
    {'params': params, 'batch_stats': variables['batch_stats']},
    x,
    use_running_average=False,
    mutable=['batch_stats'],
  )

  ref, means, variances = [], [], []
  for g in np.split(x.astype(np.float64), groups, axis=0):
    mean = g.mean(axis=(0, 1, 2, 3))
    var = g.var(axis=(0, 1, 2, 3))
    ref.append(
      (g - mean) / np.sqrt(var + eps) * np.asarray(params['scale']) + np.asarray(params['bias'])
    )
    means.append(mean)
    variances.append(var)
  np.testing.assert_allclose(np.asarray(y), np.concatenate(ref), rtol=1e-5, atol=1e-5)
  stats = updates['batch_stats']
  np.testing.assert_allclose(
    stats['mean'], (1 - momentum) * np.mean(means, axis=0), rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(
    stats['var'], momentum + (1 - momentum) * np.mean(variances, axis=0), rtol=1e-5, atol=1e-6
  )
  # The grouped result really differs from global statistics.
  y_global = BatchNorm(num_groups=1).apply(
    {'params': params, 'batch_stats': variables['batch_stats']},
    x,
    use_running_average=False,
    mutable=['batch_stats'],
  )[0]
  assert np.abs(np.asarray(y_global) - np.asarray(y)).max() > 1e-2


def test_one_group_equals_flax_batchnorm():
  x = _input((6, 4, 5, 7))
  ours = BatchNorm(num_groups=1, momentum=0.8, epsilon=1e-3)
  ref = nn.BatchNorm(momentum=0.8, epsilon=1e-3)
  v_ours = ours.init(jax.random.key(0), x, use_running_average=False)
  v_ref = ref.init(jax.random.key(0), x, use_running_average=False)
  assert jax.tree.map(jnp.shape, v_ours) == jax.tree.map(jnp.shape, v_ref)
  v_ref = jax.tree.map(lambda a: a, v_ours)  # identical starting variables
  params = {'scale': jnp.linspace(0.5, 2.0, 7), 'bias': jnp.linspace(-1.0, 1.0, 7)}
  v_ours = {'params': params, 'batch_stats': v_ours['batch_stats']}
  v_ref = {'params': params, 'batch_stats': v_ref['batch_stats']}
  y1, s1 = ours.apply(v_ours, x, use_running_average=False, mutable=['batch_stats'])
  y2, s2 = ref.apply(v_ref, x, use_running_average=False, mutable=['batch_stats'])
  np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(s1['batch_stats']['mean'], s2['batch_stats']['mean'], atol=1e-6)
  np.testing.assert_allclose(s1['batch_stats']['var'], s2['batch_stats']['var'], rtol=1e-5)
  # Evaluation with the updated running statistics.
  e1 = ours.apply({'params': params, **s1}, x, use_running_average=True)
  e2 = ref.apply({'params': params, **s2}, x, use_running_average=True)
  np.testing.assert_allclose(e1, e2, rtol=1e-5, atol=1e-5)


def test_batch_not_divisible_raises_clear_error():
  x = jnp.ones((6, 3))
  bn = BatchNorm(num_groups=4)
  with pytest.raises(ValueError, match=r'batch size 6 is not divisible by num_groups=4'):
    bn.init(jax.random.key(0), x, use_running_average=False)
  # Evaluation uses running statistics and accepts any batch size.
  variables = BatchNorm(num_groups=2).init(
    jax.random.key(0), jnp.ones((4, 3)), use_running_average=False
  )
  assert bn.apply(variables, x, use_running_average=True).shape == (6, 3)


def test_bfloat16_input_keeps_float32_statistics():
  x = _input((4, 3, 3, 8)) * 50 + 100  # large offset: bf16 statistics would be inaccurate
  bn = BatchNorm(num_groups=2, dtype=jnp.bfloat16)
  variables = bn.init(jax.random.key(0), x, use_running_average=False)
  y16, s16 = bn.apply(
    variables, jnp.asarray(x, jnp.bfloat16), use_running_average=False, mutable=['batch_stats']
  )
  y32, s32 = BatchNorm(num_groups=2).apply(
    variables,
    jnp.asarray(x, jnp.bfloat16).astype(jnp.float32),
    use_running_average=False,
    mutable=['batch_stats'],
  )
  assert y16.dtype == jnp.bfloat16
  assert s16['batch_stats']['mean'].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=3e-2)
  np.testing.assert_allclose(s16['batch_stats']['var'], s32['batch_stats']['var'], rtol=1e-6)


def test_axis_name_keeps_running_statistics_replicated():
  x = _input((2, 4, 3))  # 2 "devices" (vmapped), 4 samples each
  bn = BatchNorm(num_groups=1, axis_name='d')
  variables = BatchNorm().init(jax.random.key(0), x[0], use_running_average=False)
  f = lambda xi: bn.apply(variables, xi, use_running_average=False, mutable=['batch_stats'])
  y, stats = jax.vmap(f, axis_name='d')(x)
  means = stats['batch_stats']['mean']
  np.testing.assert_allclose(means[0], means[1])
  np.testing.assert_allclose(means[0], 0.1 * x.mean(axis=1).mean(axis=0), rtol=1e-5, atol=1e-6)
  # Normalisation itself used the local statistics.
  np.testing.assert_allclose(np.asarray(y).mean(axis=1), 0.0, atol=1e-5)


_SHARDED_SCRIPT = textwrap.dedent("""
    import os
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jaxvssl.models import get_backbone
    from jaxvssl.models.norm import BatchNorm
    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ('data',))
    shard = NamedSharding(mesh, P('data'))
    rng = np.random.default_rng(0)

    # BatchNorm: num_groups = #devices on a sharded batch == per-device statistics.
    x = (rng.normal(size=(8, 3, 3, 4)) * rng.uniform(0.5, 3, (8, 1, 1, 1))).astype(np.float32)
    bn = BatchNorm(num_groups=4)
    v = bn.init(jax.random.key(0), x, use_running_average=False)
    f = jax.jit(lambda v, x: bn.apply(v, x, use_running_average=False, mutable=['batch_stats']))
    y, s = f(v, jax.device_put(x, shard))
    for d in range(4):
      ref, _ = BatchNorm().apply(v, x[2 * d:2 * d + 2], use_running_average=False,
                                 mutable=['batch_stats'])
      np.testing.assert_allclose(np.asarray(y)[2 * d:2 * d + 2], ref, rtol=1e-5, atol=1e-5)
    assert s['batch_stats']['mean'].sharding.is_fully_replicated

    # A backbone jitted on a sharded batch with bn_groups = #devices equals running every
    # device's shard alone with global statistics.
    model = get_backbone('r3d10', width_multiplier=1 / 16, bn_groups=4)
    clips = rng.normal(size=(4, 4, 16, 16, 3)).astype(np.float32)
    # Variables filled with NumPy (threefry RNG compiles very slowly on CPU; values are arbitrary).
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(1), clips[:1], train=False))
    variables = jax.tree.map(
        lambda s: np.abs(rng.normal(size=s.shape)).astype(np.float32) * 0.2 + 0.9, shapes)
    step = jax.jit(lambda v, c: model.apply(v, c, train=True, mutable=['batch_stats']))
    feats, _ = step(variables, jax.device_put(clips, shard))
    single = get_backbone('r3d10', width_multiplier=1 / 16, bn_groups=1)
    single_step = jax.jit(lambda v, c: single.apply(v, c, train=True, mutable=['batch_stats']))
    for d in range(4):
      ref, _ = single_step(variables, clips[d:d + 1])
      np.testing.assert_allclose(np.asarray(feats)[d:d + 1], ref, rtol=1e-4, atol=1e-5)
    print('SHARDED_OK')
""")


def test_per_device_statistics_under_sharded_jit():
  """num_groups = #devices on a batch sharded over 'data' gives exact per-device statistics."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)
  result = subprocess.run(
    [sys.executable, '-c', _SHARDED_SCRIPT], capture_output=True, text=True, env=env, timeout=300
  )
  assert 'SHARDED_OK' in result.stdout, result.stdout + result.stderr


# --- the shared pieces of the CNN backbones -------------------------------------------------


def test_pooled_outputs_match_numpy():
  x = _input((2, 3, 4, 5, 6))
  np.testing.assert_allclose(global_avg_pool(x), np.asarray(x).mean(axis=(1, 2, 3)), rtol=1e-6)
  np.testing.assert_allclose(
    global_avg_pool(x[:, 0]), np.asarray(x[:, 0]).mean(axis=(1, 2)), rtol=1e-6
  )
  pool5 = np.asarray(x).max(axis=(2, 3)).mean(axis=1)
  np.testing.assert_allclose(spatial_max_temporal_mean(x), pool5, rtol=1e-6)
  assert global_avg_pool(x.astype(jnp.bfloat16)).dtype == jnp.bfloat16
  feature = backbone_outputs(x, {'stem': x}, return_stages=False)
  np.testing.assert_array_equal(feature, global_avg_pool(x))
  feature, stages = backbone_outputs(x, {'stem': x}, return_stages=True)
  assert set(stages) == {'stem', 'pool5'}
  np.testing.assert_array_equal(stages['pool5'], spatial_max_temporal_mean(x))


def test_conv_bn_factory_binds_the_backbone_settings():
  class Backbone:
    bn_groups, bn_momentum, bn_epsilon = 2, 0.8, 1e-3
    dtype, param_dtype = jnp.bfloat16, jnp.float32

  layer = conv_bn_factory(Backbone(), kernel_size=(3, 3))(4, name='conv')
  assert (layer.bn_groups, layer.bn_momentum, layer.bn_epsilon) == (2, 0.8, 1e-3)
  assert (layer.dtype, layer.param_dtype, layer.kernel_size) == (jnp.bfloat16, jnp.float32, (3, 3))
  assert layer.features == 4 and layer.relu
