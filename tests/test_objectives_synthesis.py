"""rate_order's view-synthesis losses (jaxvssl.objectives.synthesis, IEEE TCSVT 2021 eq. 13-16)
against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl import objectives

photometric_loss = jax.jit(objectives.photometric_loss)
warp_with_flow = jax.jit(objectives.warp_with_flow)


def _rand(seed, *shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def ref_bilinear(img, x, y):
  """img [H, W, C] at real (x, y), edge-clamped, float64."""
  h, w, _ = img.shape
  x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
  x0, y0 = int(np.floor(x)), int(np.floor(y))
  x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
  ax, ay = x - x0, y - y0
  img = img.astype(np.float64)
  return (1 - ay) * ((1 - ax) * img[y0, x0] + ax * img[y0, x1]) + ay * (
    (1 - ax) * img[y1, x0] + ax * img[y1, x1]
  )


def ref_photometric(frames, flow, eps):
  b, t, h, w, c = frames.shape
  vals = []
  for i in range(b):
    for s in range(t - 1):
      for yy in range(h):
        for xx in range(w):
          dx, dy = flow[i, s, yy, xx]
          warped = ref_bilinear(frames[i, s + 1], xx + dx, yy + dy)
          vals.extend(np.sqrt((warped - frames[i, s, yy, xx]) ** 2 + eps**2))
  return np.mean(vals)


def test_charbonnier_and_kl():
  np.testing.assert_allclose(objectives.charbonnier(jnp.zeros(3)), 1e-3, rtol=1e-6)
  x = _rand(0, 5)
  np.testing.assert_allclose(
    objectives.charbonnier(x, 0.1), np.sqrt(x.astype(np.float64) ** 2 + 0.01), rtol=1e-6
  )
  assert objectives.charbonnier(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.float32
  assert np.all(np.isfinite(jax.grad(lambda v: objectives.charbonnier(v).sum())(jnp.zeros(3))))
  mu, logvar = _rand(1, 3, 4), _rand(2, 3, 4)
  want = np.mean(
    [
      0.5 * sum(mu[i, j] ** 2 + np.exp(logvar[i, j]) - logvar[i, j] - 1 for j in range(4))
      for i in range(3)
    ]
  )
  np.testing.assert_allclose(objectives.vae_kl_loss(mu, logvar), want, rtol=1e-5)
  np.testing.assert_allclose(objectives.vae_kl_loss(np.zeros((2, 3)), np.zeros((2, 3))), 0.0)


def test_warp_hand_cases():
  img = _rand(3, 1, 5, 6, 2)
  np.testing.assert_allclose(warp_with_flow(img, np.zeros((1, 5, 6, 2), np.float32)), img)
  # Flow (+1, 0): out(y, x) = img(y, x + 1), last column clamped.
  flow = np.zeros((1, 5, 6, 2), np.float32)
  flow[..., 0] = 1.0
  want = np.concatenate([img[:, :, 1:], img[:, :, -1:]], axis=2)
  np.testing.assert_allclose(warp_with_flow(img, flow), want, rtol=1e-6)


def test_photometric_loss_matches_reference_and_is_differentiable():
  frames, flow = _rand(4, 2, 3, 5, 6, 2), 1.5 * _rand(5, 2, 2, 5, 6, 2)
  got = photometric_loss(frames, flow, 1e-3)
  np.testing.assert_allclose(got, ref_photometric(frames, flow, 1e-3), rtol=1e-5)
  g = jax.grad(photometric_loss, argnums=1)(frames, flow, 1e-3)
  assert np.all(np.isfinite(g)) and np.any(g != 0)
  # The correct flow of a translation aligns frame 1 onto frame 0 (except the clamped column).
  frame0 = _rand(6, 1, 5, 8, 1)
  frame1 = np.roll(frame0, 1, axis=2)  # content moves by +1 px: frame1(x) = frame0(x - 1)
  flow = np.zeros((1, 5, 8, 2), np.float32)
  flow[..., 0] = 1.0
  np.testing.assert_allclose(warp_with_flow(frame1, flow)[:, :, :-1], frame0[:, :, :-1], rtol=1e-6)


def test_infomax_infomin():
  a, b = _rand(7, 2, 1, 3, 3, 2), _rand(8, 2, 1, 3, 3, 2)
  np.testing.assert_allclose(
    objectives.infomax_flow_loss(a, b),
    np.mean(np.sqrt((b.astype(np.float64) - a) ** 2 + 1e-6)),
    rtol=1e-5,
  )
  g_orig = jax.grad(objectives.infomax_flow_loss, argnums=1)(a, b)
  np.testing.assert_array_equal(g_orig, 0.0)  # the original flow is a stop-gradient target
  e, s = _rand(9, 4, 8), _rand(10, 4, 8)
  want = -np.mean([e[i] @ s[i] / np.linalg.norm(e[i]) / np.linalg.norm(s[i]) for i in range(4)])
  np.testing.assert_allclose(objectives.infomin_loss(e, s), want, rtol=1e-5)
  np.testing.assert_array_equal(jax.grad(objectives.infomin_loss)(e, s), 0.0)
