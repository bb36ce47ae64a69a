"""The TEA motion excitation module (jaxvssl.models.motion_excitation) against a NumPy reference."""

import jax
import numpy as np

from jaxvssl.models.motion_excitation import MotionExcitation


def _rand(seed, *shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def ref_motion_excitation(x, p):
  """TEA ME in NumPy, eval mode with fresh BatchNorm statistics (mean 0, var 1)."""
  bn = lambda v, q: v / np.sqrt(1 + 1e-5) * q['scale'] + q['bias']
  xr = bn(np.einsum('bthwc,cd->bthwd', x, p['reduce']['kernel'][0, 0, 0]), p['reduce_bn'])
  k = p['transform']['kernel'][0, :, :, 0, :]  # [3, 3, C_r]
  b, t, h, w, c_r = xr.shape
  pad = np.pad(xr, ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)))
  conv = np.zeros_like(xr)
  for dy in range(3):
    for dx in range(3):
      conv += pad[:, :, dy : dy + h, dx : dx + w] * k[dy, dx]
  diff = np.concatenate([conv[:, 1:] - xr[:, :-1], np.zeros_like(xr[:, :1])], axis=1)
  pooled = diff.mean(axis=(2, 3))  # [B, T, C_r]
  a = bn(pooled @ p['expand']['kernel'][0, 0, 0], p['expand_bn'])
  gate = 1 / (1 + np.exp(-a)) - 0.5
  return x + x * gate[:, :, None, None, :]


def test_motion_excitation_matches_reference():
  x = _rand(11, 2, 3, 4, 4, 32)
  module = MotionExcitation(reduction=16)
  variables = jax.jit(module.init, static_argnames='train')(jax.random.key(0), x, train=False)
  params = jax.tree.map(np.asarray, variables['params'])
  # Random non-trivial BN affine parameters so the reference checks their placement.
  rng = np.random.default_rng(0)
  for name in ('reduce_bn', 'expand_bn'):
    params[name] = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params[name].items()}
  got = jax.jit(module.apply, static_argnames='train')(
    {'params': params, 'batch_stats': variables['batch_stats']}, x, train=False
  )
  assert got.shape == x.shape
  np.testing.assert_allclose(
    got, ref_motion_excitation(x.astype(np.float64), params), rtol=1e-4, atol=1e-5
  )


def test_motion_excitation_static_video_is_identity():
  # Identical frames + an identity channel-wise kernel give zero motion; in training mode the
  # zero response normalises to zero, the gate is sigmoid(0) - 0.5 = 0 and out == x.
  x = np.broadcast_to(_rand(12, 2, 1, 4, 4, 16), (2, 3, 4, 4, 16)).copy()
  module = MotionExcitation(reduction=4)
  variables = jax.jit(module.init, static_argnames='train')(jax.random.key(1), x, train=False)
  params = jax.tree.map(np.asarray, variables['params'])
  kernel = np.zeros_like(params['transform']['kernel'])
  kernel[0, 1, 1] = 1.0
  params['transform'] = {'kernel': kernel}
  apply = jax.jit(lambda v, x: module.apply(v, x, train=True, mutable=['batch_stats']))
  out, _ = apply({'params': params, 'batch_stats': variables['batch_stats']}, x)
  np.testing.assert_allclose(out, x, atol=1e-6)
