"""The device half of the input pipeline: normalisation and photometric augmentation in JAX.

The host (tf.data, `pipeline.py`) can hand over pixels instead of normalised floats, so that a
batch crosses to the accelerator as uint8 (a quarter of the bytes of float32) and the per-pixel
work runs on the device, inside the jitted train step (`prepare_batch`):

* `config.data.transfer_dtype='uint8'`: the host still augments, then rounds the augmented
  [0, 1] pixels to uint8; the device divides by 255 and normalises with `config.data.mean/std`.
* `config.data.device_augment=True`: the host only decodes and crops (and resizes the crop);
  it draws every other augmentation parameter from the same stateless seeds the host path uses
  (`pipeline.augment_parameters`) and sends them as `'augment/<view>'` float32 `[B, NUM_PARAMS]`
  next to the view; the device applies flip, colour jitter (random order), grayscale and
  Gaussian blur with these parameters (`augment`), then normalises. With float32 transfer the
  result equals the host path to float rounding; with uint8 transfer the crop is rounded to 1/255
  first.

Views the host normalised (float32, no 'augment/' entry) pass through unchanged, so batches of
the default configuration and hand-made test batches are untouched.

The ops mirror `jaxvssl/inputs/ops.py` (torchvision semantics: brightness, contrast, saturation
as blends clipped to [0, 1], hue rotation in HSV, ITU-R 601 luma, reflect-padded separable
Gaussian blur with radius ceil(truncate * sigma) capped inside the frame).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Batch key of the augmentation parameters of view v: AUGMENT_PREFIX + v.
AUGMENT_PREFIX = 'augment/'
# Columns of an 'augment/<view>' row: flags are 0/1; the order columns hold the jitter's op order
# (0 brightness, 1 contrast, 2 saturation, 3 hue); sigma is the blur's.
PARAM_NAMES = (
  'flip',
  'jitter',
  'brightness',
  'contrast',
  'saturation',
  'hue',
  'order0',
  'order1',
  'order2',
  'order3',
  'grayscale',
  'blur',
  'sigma',
)
NUM_PARAMS = len(PARAM_NAMES)
_COL = {name: i for i, name in enumerate(PARAM_NAMES)}
_LUMA = (0.2989, 0.5870, 0.1140)  # ops._LUMA


def to_unit(x: jax.Array) -> jax.Array:
  """uint8 [0, 255] -> float32 [0, 1]; float input is taken as [0, 1] already."""
  if x.dtype == jnp.uint8:
    return x.astype(jnp.float32) * (1.0 / 255.0)
  return x.astype(jnp.float32)


def normalize(x: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
  """(x - mean) / std per channel of float32 [0, 1] pixels `[..., 3]` (`ops.normalize`)."""
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def rgb_to_gray(x: jax.Array) -> jax.Array:
  """Luma `[..., 1]` of `[..., 3]`."""
  return jnp.sum(x * jnp.asarray(_LUMA, x.dtype), axis=-1, keepdims=True)


def adjust_brightness(x: jax.Array, factor: jax.Array) -> jax.Array:
  return jnp.clip(x * factor, 0.0, 1.0)


def adjust_contrast(x: jax.Array, factor: jax.Array) -> jax.Array:
  """Blend of each frame `[T, H, W, 3]` with its mean luma."""
  mean = rgb_to_gray(jnp.mean(x, axis=(-3, -2), keepdims=True))
  return jnp.clip((x - mean) * factor + mean, 0.0, 1.0)


def adjust_saturation(x: jax.Array, factor: jax.Array) -> jax.Array:
  gray = rgb_to_gray(x)
  return jnp.clip((x - gray) * factor + gray, 0.0, 1.0)


def adjust_hue(x: jax.Array, delta: jax.Array) -> jax.Array:
  """Rotates the hue by `delta` turns (tf.image.adjust_hue's HSV round trip), clipped to [0, 1]."""
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  v = jnp.max(x, axis=-1)
  chroma = v - jnp.min(x, axis=-1)
  safe = jnp.where(chroma > 0, chroma, 1.0)
  # Hue in [0, 6): the sector of the maximum channel plus the offset inside it.
  h = jnp.where(
    v == r, (g - b) / safe, jnp.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
  )
  h = jnp.where(chroma > 0, h, 0.0)
  h = jnp.mod(h + 6.0 * delta, 6.0)
  # HSV -> RGB with s * v = chroma: each channel is v - chroma * clip(min(k, 4 - k), 0, 1).
  k = jnp.mod(jnp.asarray([5.0, 3.0, 1.0], x.dtype) + h[..., None], 6.0)
  out = v[..., None] - chroma[..., None] * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)
  return jnp.clip(out, 0.0, 1.0)


def _blur_operator(size: int, radius: int) -> np.ndarray:
  """One-hot `[size, 2 * radius + 1, size]`: O[i, j] picks the reflect-padded source of tap j.

  (M @ v)[i] = sum_j kernel[j] v[reflect(i + j - radius)], `ops.reflect_blur_matrix`."""
  src = np.abs(np.arange(size)[:, None] + np.arange(-radius, radius + 1)[None, :])
  src = np.where(src > size - 1, 2 * (size - 1) - src, src)
  return np.eye(size, dtype=np.float32)[src]


def gaussian_blur(x: jax.Array, sigma: jax.Array, truncate: float, max_sigma: float) -> jax.Array:
  """Separable Gaussian blur of `[T, H, W, 3]` with reflect padding (`ops.gaussian_blur`).

  The radius ceil(truncate * sigma) (>= 1, capped at min(H, W) - 1) depends on the traced
  sigma, so the kernel has the static radius of `max_sigma` and zero taps beyond sigma's radius;
  after normalisation it equals the host's kernel.
  """
  h, w = x.shape[-3], x.shape[-2]
  cap = min(h, w) - 1
  if cap < 1:
    return x
  radius = min(max(int(math.ceil(truncate * max_sigma)), 1), cap)
  taps = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  own = jnp.minimum(jnp.maximum(jnp.ceil(truncate * sigma), 1.0), float(cap))
  kernel = jnp.where(jnp.abs(taps) <= own, jnp.exp(-0.5 * jnp.square(taps / sigma)), 0.0)
  kernel = kernel / jnp.sum(kernel)
  along_w = jnp.einsum('j,ijs->is', kernel, _blur_operator(w, radius))  # [W, W]
  along_h = jnp.einsum('j,ijs->is', kernel, _blur_operator(h, radius))  # [H, H]
  x = jnp.einsum('thwc,vw->thvc', x, along_w)
  return jnp.einsum('thwc,uh->tuwc', x, along_h)


def augment_clip(
  x: jax.Array,
  params: jax.Array,
  *,
  jitter_strength: Sequence[float],
  blur_truncate: float,
  blur_max_sigma: float,
) -> jax.Array:
  """Flip, colour jitter, grayscale and blur of one clip `[T, H, W, 3]` float32 [0, 1].

  Args:
    params: float32 `[NUM_PARAMS]` (`PARAM_NAMES`), drawn on the host.
    jitter_strength: config.data.color_jitter_strength; an op of strength 0 is skipped as the
      host skips it (static).
    blur_truncate, blur_max_sigma: config.data.blur_truncate and the upper end of blur_sigma.
  """
  p = {name: params[i] for name, i in _COL.items()}
  x = jnp.where(p['flip'] > 0.5, x[..., ::-1, :], x)
  adjust = (
    (adjust_brightness, 'brightness'),
    (adjust_contrast, 'contrast'),
    (adjust_saturation, 'saturation'),
    (adjust_hue, 'hue'),
  )
  branches = [
    (lambda y, fn=fn, key=key: fn(y, p[key])) if strength > 0 else (lambda y: y)
    for (fn, key), strength in zip(adjust, jitter_strength)
  ]
  y = x
  for position in range(4):
    y = jax.lax.switch(p[f'order{position}'].astype(jnp.int32), branches, y)
  x = jnp.where(p['jitter'] > 0.5, y, x)
  x = jnp.where(p['grayscale'] > 0.5, jnp.broadcast_to(rgb_to_gray(x), x.shape), x)
  blurred = gaussian_blur(x, p['sigma'], blur_truncate, blur_max_sigma)
  return jnp.where(p['blur'] > 0.5, blurred, x)


def augment(x: jax.Array, params: jax.Array, data_cfg: Any) -> jax.Array:
  """`augment_clip` per example: x `[B, T, H, W, 3]` or `[B, H, W, 3]` in [0, 1], params
  `[B, NUM_PARAMS]` -> the same shape, float32."""
  frames = x if x.ndim == 5 else x[:, None]
  fn = lambda clip, p: augment_clip(
    clip,
    p,
    jitter_strength=tuple(float(s) for s in data_cfg.color_jitter_strength),
    blur_truncate=float(data_cfg.blur_truncate),
    blur_max_sigma=float(data_cfg.blur_sigma[1]),
  )
  out = jax.vmap(fn)(frames, params.astype(jnp.float32))
  return out if x.ndim == 5 else out[:, 0]


def prepare_batch(batch: Mapping[str, jax.Array], data_cfg: Any) -> dict[str, jax.Array]:
  """The batch a method sees: every view normalised float32, the 'augment/' entries consumed.

  Called inside the jitted step (and the jitted init) by the training loop. A view with an
  'augment/<view>' entry is augmented on the device first; any other uint8 array is a view the
  host augmented, only normalised here; float views without parameters are already normalised
  and pass through (module docstring).
  """
  out = {}
  for key, value in batch.items():
    if key.startswith(AUGMENT_PREFIX):
      continue
    params = batch.get(AUGMENT_PREFIX + key)
    if params is not None:
      value = normalize(augment(to_unit(value), params, data_cfg), data_cfg.mean, data_cfg.std)
    elif value.dtype == jnp.uint8:
      value = normalize(to_unit(value), data_cfg.mean, data_cfg.std)
    out[key] = value
  return out


def prefetch(iterator: Iterable[Any], size: int, put: Callable[[Any], Any]) -> Iterator[Any]:
  """Yields `put(batch)` for each batch, with `size` batches put (transferred) ahead.

  `put` starts an asynchronous host-to-device copy (`jax.device_put` returns at once), so while
  the device computes step s the batches of steps s + 1 .. s + size are already on their way.
  size=0 puts each batch only when it is asked for.
  """
  queue: collections.deque = collections.deque()
  iterator = iter(iterator)
  while True:
    while len(queue) < max(size, 1):
      try:
        queue.append(put(next(iterator)))
      except StopIteration:
        break
    if not queue:
      return
    yield queue.popleft()
