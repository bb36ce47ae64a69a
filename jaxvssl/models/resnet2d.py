"""2D ResNets (torchvision layout) used as per-frame encoders, flax.linen, NHWC.

  stem    conv 7x7 stride 2, 64 ch, BN, ReLU, max-pool 3x3 stride 2
  stages  64/128/256/512 planes (times `width_multiplier`); BasicBlock (resnet10/18) or
          Bottleneck with expansion 4 and the stride on the 3x3 conv (ResNet-50 "v1.5")
  head    global average pool -> [B, 512 * expansion * width_multiplier]; no classifier.

ResNet-50 is CACL's frozen frame encoder (2048-d, 23.5M parameters without the fc). The narrow
resnet18/resnet10 (with `width_multiplier`) stand in for it in CPU configs.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models.norm import conv_bn_factory, global_avg_pool, max_pool, scaled_width

Dtype = Any

STAGE_PLANES = (64, 128, 256, 512)


class BasicBlock2D(nn.Module):
  """Two 3x3 convs. `[B,H,W,Cin]` -> `[B,H/s,W/s,planes]`."""

  planes: int
  stride: int
  conv_bn: Any
  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    s = (self.stride, self.stride)
    y = self.conv_bn(self.planes, (3, 3), s, name='conv1')(x, train)
    y = self.conv_bn(self.planes, (3, 3), relu=False, name='conv2')(y, train)
    if self.stride != 1 or x.shape[-1] != self.planes:
      x = self.conv_bn(self.planes, (1, 1), s, relu=False, name='downsample')(x, train)
    return nn.relu(x + y)


class Bottleneck2D(nn.Module):
  """1x1 -> 3x3 (stride) -> 1x1 (x4). `[B,H,W,Cin]` -> `[B,H/s,W/s,4*planes]`."""

  planes: int
  stride: int
  conv_bn: Any
  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    s = (self.stride, self.stride)
    out = self.planes * self.expansion
    y = self.conv_bn(self.planes, (1, 1), name='conv1')(x, train)
    y = self.conv_bn(self.planes, (3, 3), s, name='conv2')(y, train)
    y = self.conv_bn(out, (1, 1), relu=False, name='conv3')(y, train)
    if self.stride != 1 or x.shape[-1] != out:
      x = self.conv_bn(out, (1, 1), s, relu=False, name='downsample')(x, train)
    return nn.relu(x + y)


class ResNet2D(nn.Module):
  """Image ResNet, input `[B, H, W, 3]`, output pooled `[B, D]`.

  Attributes:
    stage_sizes: blocks per stage ((3, 4, 6, 3) for ResNet-50).
    bottleneck: Bottleneck blocks (ResNet-50) instead of BasicBlocks (ResNet-10/18).
    width_multiplier: scales every width (rounded, >= 1 channel).
    bn_groups, bn_momentum, bn_epsilon: see `jaxvssl.models.norm.BatchNorm`.
    dtype, param_dtype: computation and parameter dtypes.
  """

  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  bottleneck: bool = True
  width_multiplier: float = 1.0
  bn_groups: int = 1
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @property
  def feature_dim(self) -> int:
    expansion = Bottleneck2D.expansion if self.bottleneck else BasicBlock2D.expansion
    return scaled_width(STAGE_PLANES[-1], self.width_multiplier) * expansion

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False):
    """Encodes images `[B, H, W, C]`.

    Returns:
      `[B, D]` global average pool of the last map (D = 2048 for ResNet-50); with
      return_stages=True `(feature, stages)` with 'stem' (after the max-pool) and
      'stage1'..'stage4' maps `[B, H', W', C]`.
    """
    if x.ndim != 4:
      raise ValueError(f'jaxvssl/models/resnet2d.py: input must be [B,H,W,C], got {x.shape}.')
    conv_bn = conv_bn_factory(self)
    block_cls = Bottleneck2D if self.bottleneck else BasicBlock2D
    x = conv_bn(scaled_width(64, self.width_multiplier), (7, 7), (2, 2), name='stem_conv')(
      x.astype(self.dtype), train
    )
    x = max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    stages = {'stem': x}
    for i, (num_blocks, planes) in enumerate(zip(self.stage_sizes, STAGE_PLANES)):
      for j in range(num_blocks):
        x = block_cls(
          scaled_width(planes, self.width_multiplier),
          stride=2 if (i > 0 and j == 0) else 1,
          conv_bn=conv_bn,
          name=f'stage{i + 1}_block{j}',
        )(x, train)
      stages[f'stage{i + 1}'] = x
    feature = global_avg_pool(x)
    return (feature, stages) if return_stages else feature
