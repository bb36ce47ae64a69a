"""C3D in the layout of the VCOP line of papers (VCOP, PRP, CACL), flax.linen, NDHWC.

  conv1a 64                 pool1 1x2x2 / (1,2,2)
  conv2a 128                pool2 2x2x2 / 2
  conv3a 256, conv3b 256    pool3 2x2x2 / 2
  conv4a 512, conv4b 512    pool4 2x2x2 / 2
  conv5a 512, conv5b 512    pool5 2x2x2 / 2, padding (0,1,1)
  global average pool -> [B, 512 * width_multiplier]

Every conv is 3x3x3, stride 1, padding 1, followed by BatchNorm and ReLU. The convs carry no
bias (a BN follows each one; the PyTorch code keeps a redundant bias, 2,752 parameters at width 1).
With 16x112x112 input the pool5 map is [B, 1, 4, 4, 512].

Small inputs: a pooling window larger than the (padded) map along an axis is skipped on that
axis (see `norm.max_pool(clamp_to_input=True)`), so 8x32x32 CPU clips work; the standard
16x112x112 input is never affected.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models.attention import check_remat_stages
from jaxvssl.models.norm import backbone_outputs, conv_bn_factory, max_pool, scaled_width

Dtype = Any

# (stage key, conv widths, pool window, pool stride, pool padding)
C3D_LAYOUT = (
  ('stem', (64,), (1, 2, 2), (1, 2, 2), ((0, 0), (0, 0), (0, 0))),
  ('stage1', (128,), (2, 2, 2), (2, 2, 2), ((0, 0), (0, 0), (0, 0))),
  ('stage2', (256, 256), (2, 2, 2), (2, 2, 2), ((0, 0), (0, 0), (0, 0))),
  ('stage3', (512, 512), (2, 2, 2), (2, 2, 2), ((0, 0), (0, 0), (0, 0))),
  ('stage4', (512, 512), (2, 2, 2), (2, 2, 2), ((0, 0), (1, 1), (1, 1))),
)


class C3D(nn.Module):
  """C3D with BatchNorm, input `[B, T, H, W, 3]`.

  Attributes:
    width_multiplier: scales every width (rounded, >= 1 channel).
    bn_groups, bn_momentum, bn_epsilon: see `jaxvssl.models.norm.BatchNorm`.
    dtype: computation dtype; param_dtype: parameter dtype.
    remat_stages: stages (1..4: conv2a, conv3, conv4, conv5) whose conv+BN+ReLU layers are
      rematerialised (`nn.remat`); same parameters and gradients.
  """

  width_multiplier: float = 1.0
  bn_groups: int = 1
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  remat_stages: tuple[int, ...] = ()

  @property
  def feature_dim(self) -> int:
    return scaled_width(512, self.width_multiplier)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False):
    """Encodes a clip `[B, T, H, W, C]`.

    Returns:
      `[B, 512 * width_multiplier]` (global average of the pool5 map); with return_stages=True
      `(feature, stages)`: 'stem' (conv1a), 'stage1' (conv2a), 'stage2' (conv3b),
      'stage3' (conv4b), 'stage4' (conv5b): the conv-block outputs BEFORE their pooling,
      `[B, T', H', W', C]`; 'pool5': `[B, D]`, the pool5 map max-pooled over H, W then averaged
      over T (the retrieval feature).
    """
    if x.ndim != 5:
      raise ValueError(f'jaxvssl/models/c3d.py: input must be [B,T,H,W,C], got {x.shape}.')
    remat = check_remat_stages(self.remat_stages, len(C3D_LAYOUT) - 1, 'jaxvssl/models/c3d.py')
    x = x.astype(self.dtype)
    stages = {}
    for block, (key, widths, window, strides, padding) in enumerate(C3D_LAYOUT):
      # Layout row `block` is the stem (0) or stage `block`.
      conv_bn = conv_bn_factory(self, remat=block in remat, kernel_size=(3, 3, 3))
      for j, width in enumerate(widths):
        name = f'conv{block + 1}' + ('a', 'b')[j]
        x = conv_bn(scaled_width(width, self.width_multiplier), name=name)(x, train)
      stages[key] = x
      x = max_pool(x, window, strides, padding, clamp_to_input=True)
    return backbone_outputs(x, stages, return_stages)
