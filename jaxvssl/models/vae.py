"""A small convolutional video VAE: rate_order's view generator G (TCSVT 2021, Sec. III-G).

The paper names G "a variational autoencoder" that maps a clip x to a synthetic view x_s of the
same shape and gives no architecture; this one is written down in docs/methods/rate_order.md:

  encoder  per width c in `channels`: Conv (kt x 3 x 3, spatial stride 2) -> ReLU
           then a 1 x 1 x 1 Conv -> latent mean and log-variance, `[B, T, H/2^L, W/2^L, latent]`
  sample   z = mean + exp(log_var / 2) * eps (eps ~ N(0, 1), rng stream 'latent'); the mean
           itself when `sample=False`
  decoder  per width in reversed(`channels`): nearest 2x spatial upsampling -> Conv
           (kt x 3 x 3) -> ReLU, then a kt x 3 x 3 Conv to 3 channels and a sigmoid: an image in
           [0, 1], normalised with the data's `mean` / `std` like every input clip.

Time is never strided (kt = `temporal_kernel`, 'SAME' padding), so x_s has x's frames and any
clip length works; height and width must be divisible by 2^len(channels). The input is the
normalised clip the pipeline delivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvssl.models.conv import Conv

Dtype = Any


def upsample2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling of the two spatial axes of `[B, T, H, W, C]`."""
  return jnp.repeat(jnp.repeat(x, 2, axis=2), 2, axis=3)


class VideoVAE(nn.Module):
  """`[B, T, H, W, 3]` (normalised) -> (synthetic clip, latent mean, latent log-variance).

  Attributes:
    channels: encoder widths, one stride-2 stage each (the decoder mirrors them).
    latent_dim: channels of the spatial latent.
    temporal_kernel: temporal extent of every 3 x 3 conv (1: frame by frame).
    mean, std: the data's per-channel normalisation (the output is normalised with them).
    dtype: computation dtype (the output, mean and log-variance are float32).
  """

  channels: Sequence[int] = (32, 64)
  latent_dim: int = 16
  temporal_kernel: int = 3
  mean: Sequence[float] = (0.0, 0.0, 0.0)
  std: Sequence[float] = (1.0, 1.0, 1.0)
  dtype: Dtype = jnp.float32

  def _conv(self, features: int, stride: int = 1, kernel: int = 3) -> Conv:
    kt = self.temporal_kernel if kernel == 3 else 1
    return Conv(features, (kt, kernel, kernel), strides=(1, stride, stride), dtype=self.dtype)

  def setup(self):
    self.enc = [self._conv(c, stride=2) for c in self.channels]
    self.latent = self._conv(2 * self.latent_dim, kernel=1)
    self.dec = [self._conv(c) for c in reversed(self.channels)]
    self.out = self._conv(3)

  def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Normalised clip -> (latent mean, latent log-variance), float32."""
    factor = 2 ** len(self.channels)
    if x.ndim != 5 or x.shape[2] % factor or x.shape[3] % factor:
      raise ValueError(
        f'VideoVAE: needs [B, T, H, W, C] with H, W divisible by {factor}, got {x.shape}'
      )
    h = x.astype(self.dtype)
    for conv in self.enc:
      h = nn.relu(conv(h))
    stats = self.latent(h).astype(jnp.float32)
    mean, log_var = jnp.split(stats, 2, axis=-1)
    return mean, log_var

  def decode(self, z: jax.Array) -> jax.Array:
    """Latent -> normalised clip (float32)."""
    h = z.astype(self.dtype)
    for conv in self.dec:
      h = nn.relu(conv(upsample2x(h)))
    pixels = nn.sigmoid(self.out(h).astype(jnp.float32))  # [0, 1]
    return (pixels - jnp.asarray(self.mean, jnp.float32)) / jnp.asarray(self.std, jnp.float32)

  def __call__(self, x: jax.Array, sample: bool = True) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(synthetic clip [B, T, H, W, 3], latent mean, latent log-variance)."""
    mean, log_var = self.encode(x)
    z = mean
    if sample:
      eps = jax.random.normal(self.make_rng('latent'), mean.shape, jnp.float32)
      z = mean + jnp.exp(0.5 * log_var) * eps
    return self.decode(z), mean, log_var
