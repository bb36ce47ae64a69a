"""View-synthesis objectives of rate_order.

Used by rate_order's view-synthesis stage (IEEE TCSVT 2021, DOI 10.1109/TCSVT.2021.3114209,
Sec. G, eq. 13-16; method `view_synthesis`, jaxvssl/methods/view_synthesis.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvssl.objectives._utils import as_f32, l2_normalize


def charbonnier(x: jax.Array, eps: float = 1e-3) -> jax.Array:
  """Charbonnier penalty rho(x) = sqrt(x^2 + eps^2), elementwise (a smooth L1; TCSVT 2021 eq. 13).

  Args:
    x: any shape. eps: 1e-3 in rate_order.
  Returns:
    float32, same shape as x.
  """
  x = as_f32(x)
  return jnp.sqrt(x * x + eps * eps)


def vae_kl_loss(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """KL(N(mean, var) || N(0, 1)) of the VAE latent (TCSVT 2021 eq. 14).

  1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1), summed over latent dimensions and averaged
  over the batch. Taking log-variance keeps sigma > 0 and the log finite.

  Args:
    mean, log_var: [B, ...] latent mean and log-variance.
  Returns:
    float32 scalar.
  """
  mean, log_var = as_f32(mean), as_f32(log_var)
  kl = 0.5 * (mean**2 + jnp.exp(log_var) - log_var - 1.0)
  return jnp.mean(jnp.sum(kl.reshape(kl.shape[0], -1), axis=-1))


def bilinear_sample(image: jax.Array, coords: jax.Array) -> jax.Array:
  """Bilinear sampling of images at real-valued pixel coordinates, edge-clamped.

  Args:
    image: [B, H, W, C].
    coords: [B, Ho, Wo, 2] (x, y) pixel coordinates into `image` (x along W, y along H);
      points outside the image take the value of the nearest border pixel.
  Returns:
    float32 [B, Ho, Wo, C].
  """
  image = as_f32(image)
  coords = as_f32(coords)
  b, h, w, c = image.shape
  x = jnp.clip(coords[..., 0], 0.0, w - 1.0)
  y = jnp.clip(coords[..., 1], 0.0, h - 1.0)
  x0 = jnp.clip(jnp.floor(x), 0, w - 2 if w > 1 else 0)
  y0 = jnp.clip(jnp.floor(y), 0, h - 2 if h > 1 else 0)
  wx = (x - x0)[..., None]
  wy = (y - y0)[..., None]
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  x1 = jnp.minimum(x0 + 1, w - 1)
  y1 = jnp.minimum(y0 + 1, h - 1)
  flat = image.reshape(b, h * w, c)

  def gather(yy, xx):
    idx = (yy * w + xx).reshape(b, -1, 1)
    return jnp.take_along_axis(flat, idx, axis=1).reshape(yy.shape + (c,))

  top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
  bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
  return top * (1 - wy) + bottom * wy


def warp_with_flow(image: jax.Array, flow: jax.Array) -> jax.Array:
  """Backward warping: out(p) = image(p + flow(p)), bilinear, edge-clamped.

  Args:
    image: [B, H, W, C] (the later frame).
    flow: [B, H, W, 2] forward flow (dx, dy) in pixels from the earlier frame to `image`.
  Returns:
    float32 [B, H, W, C], `image` aligned to the earlier frame.
  """
  _, h, w, _ = image.shape
  gy, gx = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing='ij'
  )
  coords = jnp.stack([gx, gy], axis=-1)[None] + as_f32(flow)
  return bilinear_sample(image, coords)


def photometric_loss(frames: jax.Array, flow: jax.Array, eps: float = 1e-3) -> jax.Array:
  """Photometric consistency of an estimated flow (TCSVT 2021 eq. 13).

  Frame t+1 is warped by the flow t -> t+1 onto frame t; the Charbonnier penalty of the
  difference is averaged over pixels, channels, frame pairs and the batch.

  Args:
    frames: [B, T, H, W, C] video clip.
    flow: [B, T-1, H, W, 2] flow (dx, dy) from frame t to frame t+1, in pixels.
    eps: Charbonnier epsilon.
  Returns:
    float32 scalar.
  """
  frames = as_f32(frames)
  b, t, h, w, c = frames.shape
  if flow.shape != (b, t - 1, h, w, 2):
    raise ValueError(f'photometric_loss: flow must be {(b, t - 1, h, w, 2)}, got {flow.shape}')
  later = frames[:, 1:].reshape(b * (t - 1), h, w, c)
  warped = warp_with_flow(later, flow.reshape(b * (t - 1), h, w, 2))
  return jnp.mean(charbonnier(warped - frames[:, :-1].reshape(b * (t - 1), h, w, c), eps))


def infomax_flow_loss(
  synthetic_flow: jax.Array, original_flow: jax.Array, eps: float = 1e-3
) -> jax.Array:
  """Info-max (TCSVT 2021 eq. 15): the synthetic view's flow matches the original's.

  The original flow is a stop-gradient target (the paper detaches it to avoid collapse).

  Args:
    synthetic_flow, original_flow: [B, T-1, H, W, 2].
  Returns:
    float32 scalar, mean Charbonnier penalty.
  """
  target = jax.lax.stop_gradient(as_f32(original_flow))
  return jnp.mean(charbonnier(target - as_f32(synthetic_flow), eps))


def infomin_loss(original_embedding: jax.Array, synthetic_embedding: jax.Array) -> jax.Array:
  """Info-min (TCSVT 2021 eq. 16): L = -cos(f(x), f(x_s)), x stop-gradient.

  Implemented exactly as eq. 16 writes it (see docs/objectives.md). Note that minimising -cos maximises the
  similarity, while the paper's text says the mutual information is MINIMISED to suppress
  appearance dependence; `view_synthesis` (`infomin_form='text'`, its default) minimises +cos,
  i.e. the negative of this loss.

  Args:
    original_embedding: [B, D] f(x) (stop-gradient).
    synthetic_embedding: [B, D] f(x_s).
  Returns:
    float32 scalar, mean over the batch.
  """
  a = jax.lax.stop_gradient(l2_normalize(original_embedding))
  s = l2_normalize(synthetic_embedding)
  return -jnp.mean(jnp.sum(a * s, axis=-1))
