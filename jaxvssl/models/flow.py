"""A small optical-flow estimator: rate_order's flow network O (TCSVT 2021, Sec. III-G).

The paper asks for an optical-flow estimator cheap enough to run in training ("conventional
optical flow estimation algorithms require a lot of calculation time") that predicts, for every
pair of consecutive frames, 2 channels: the x and y offsets of each pixel. It gives no
architecture; this one is a U-Net on the two frames stacked on the channel axis:

  encoder  per width c_i in `channels`: Conv 3 x 3 (stride 1 for the first, 2 after) -> ReLU
  decoder  per level, coarse to fine: nearest 2x upsampling, concatenation with the encoder map
           of that resolution, Conv 3 x 3 -> ReLU
  output   Conv 3 x 3 -> 2 channels (dx, dy) in pixels, initialised to zero (zero flow at start)

Flow t is from frame t to frame t + 1 (`objectives.warp_with_flow` samples frame t + 1 at
p + flow(p)). Height and width must be divisible by 2^(len(channels) - 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvssl.models.conv import Conv

Dtype = Any


def _upsample2x(x: jax.Array) -> jax.Array:
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class FlowNet(nn.Module):
  """`[B, T, H, W, C]` clip -> `[B, T - 1, H, W, 2]` flow between consecutive frames (float32).

  Attributes:
    channels: encoder widths; all but the first halve the resolution.
    dtype: computation dtype.
  """

  channels: Sequence[int] = (32, 64, 96)
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.ndim != 5 or x.shape[1] < 2:
      raise ValueError(f'FlowNet: needs a clip [B, T >= 2, H, W, C], got {x.shape}')
    b, t, h, w, c = x.shape
    factor = 2 ** (len(self.channels) - 1)
    if h % factor or w % factor:
      raise ValueError(f'FlowNet: height and width must be divisible by {factor}, got {x.shape}')
    pairs = jnp.concatenate([x[:, :-1], x[:, 1:]], axis=-1).reshape(b * (t - 1), h, w, 2 * c)
    y = pairs.astype(self.dtype)
    skips = []
    for i, width in enumerate(self.channels):
      stride = 1 if i == 0 else 2
      y = nn.relu(Conv(width, (3, 3), strides=stride, dtype=self.dtype, name=f'enc{i}')(y))
      skips.append(y)
    for i in range(len(self.channels) - 2, -1, -1):
      y = jnp.concatenate([_upsample2x(y), skips[i]], axis=-1)
      y = nn.relu(Conv(self.channels[i], (3, 3), dtype=self.dtype, name=f'dec{i}')(y))
    flow = Conv(
      2,
      (3, 3),
      dtype=self.dtype,
      kernel_init=nn.initializers.zeros_init(),
      name='flow',
    )(y)
    return flow.astype(jnp.float32).reshape(b, t - 1, h, w, 2)
