"""S3D-G: separable 3D Inception-v1 with feature gating (Xie et al., ECCV 2018), NDHWC.

Layout (the authors' TF-Slim S3D-G; widths times `width_multiplier`):
  Conv1a   3x7x7 conv, stride 2 on T, H, W, 64        (full 3D: separable is slow here)
  Pool2a   max 1x3x3, stride (1,2,2)
  Conv2b   1x1x1, 64
  Conv2c   separable 3x3x3 (1x3x3 -> BN/ReLU -> 3x1x1 -> BN/ReLU), 192, gated
  Pool3a   max 1x3x3, stride (1,2,2)
  Mixed3b, Mixed3c                               -> 256, 480
  Pool4a   max 3x3x3, stride 2
  Mixed4b .. Mixed4f                             -> 512, 512, 512, 528, 832
  Pool5a   max 2x2x2, stride 2
  Mixed5b, Mixed5c                               -> 832, 1024
  global average pool -> [B, 1024 * width_multiplier]
Every conv is followed by BatchNorm and ReLU. An Inception block has 4 branches: 1x1x1;
1x1x1 -> separable 3x3x3; 1x1x1 -> separable 3x3x3; max 3x3x3 (stride 1) -> 1x1x1; with
gating, EVERY branch output is multiplied by sigmoid(W mean_{T,H,W}(branch)) (W: C x C, no
bias), as in the authors' code. `gating=False` gives plain S3D.

Padding is the symmetric PyTorch `k // 2` (TF 'SAME' differs only for the stride-2 7x7 conv and
Pool5a on odd sizes). Pooling windows larger than a tiny input are skipped on that axis.
With 16x112x112 input: stem [B,8,56,56,64], stage1 [B,8,28,28,192] (Conv2c),
stage2 [B,8,14,14,480] (Mixed3c), stage3 [B,4,7,7,832] (Mixed4f), stage4 [B,2,3,3,1024] (Mixed5c).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models.attention import check_remat_stages, maybe_remat
from jaxvssl.models.norm import backbone_outputs, conv_bn_factory, max_pool, scaled_width

Dtype = Any

# Inception block widths: (b0 1x1, b1 1x1, b1 3x3, b2 1x1, b2 3x3, b3 1x1).
S3D_BLOCKS = {
  'mixed3b': (64, 96, 128, 16, 32, 32),
  'mixed3c': (128, 128, 192, 32, 96, 64),
  'mixed4b': (192, 96, 208, 16, 48, 64),
  'mixed4c': (160, 112, 224, 24, 64, 64),
  'mixed4d': (128, 128, 256, 24, 64, 64),
  'mixed4e': (112, 144, 288, 32, 64, 64),
  'mixed4f': (256, 160, 320, 32, 128, 128),
  'mixed5b': (256, 160, 320, 32, 128, 128),
  'mixed5c': (384, 192, 384, 48, 128, 128),
}


class SelfGating(nn.Module):
  """S3D-G feature gating: `x * sigmoid(W mean_{T,H,W}(x))`, `[B,T,H,W,C]` -> same shape."""

  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    context = jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3), keepdims=True)
    gate = nn.Dense(
      x.shape[-1],
      use_bias=False,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=nn.initializers.truncated_normal(0.01),
      name='transform',
    )(context)
    return x * jax.nn.sigmoid(gate.astype(jnp.float32)).astype(x.dtype)


class SepConvBN(nn.Module):
  """Separable 3D conv: 1xkxk (stride (1,s,s)) -> BN/ReLU -> kx1x1 (stride (s,1,1)) -> BN/ReLU."""

  features: int
  kernel: int
  conv_bn: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    k = self.kernel
    x = self.conv_bn(self.features, (1, k, k), name='spatial')(x, train)
    return self.conv_bn(self.features, (k, 1, 1), name='temporal')(x, train)


class InceptionBlock3D(nn.Module):
  """Separable 3D Inception block; output channels = b0 + b1_3x3 + b2_3x3 + b3."""

  widths: tuple[int, int, int, int, int, int]
  gating: bool
  conv_bn: Any
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    w0, w1a, w1b, w2a, w2b, w3 = self.widths
    b0 = self.conv_bn(w0, (1, 1, 1), name='b0_1x1')(x, train)
    b1 = self.conv_bn(w1a, (1, 1, 1), name='b1_1x1')(x, train)
    b1 = SepConvBN(w1b, 3, self.conv_bn, name='b1_3x3')(b1, train)
    b2 = self.conv_bn(w2a, (1, 1, 1), name='b2_1x1')(x, train)
    b2 = SepConvBN(w2b, 3, self.conv_bn, name='b2_3x3')(b2, train)
    b3 = max_pool(x, (3, 3, 3), (1, 1, 1), ((1, 1),) * 3)
    b3 = self.conv_bn(w3, (1, 1, 1), name='b3_1x1')(b3, train)
    branches = [b0, b1, b2, b3]
    if self.gating:
      branches = [
        SelfGating(self.dtype, self.param_dtype, name=f'gate{i}')(b) for i, b in enumerate(branches)
      ]
    return jnp.concatenate(branches, axis=-1)


class S3D(nn.Module):
  """S3D-G backbone, input `[B, T, H, W, 3]`.

  Attributes:
    gating: S3D-G feature gating (False: plain S3D).
    width_multiplier: scales every width (rounded, >= 1 channel).
    bn_groups, bn_momentum, bn_epsilon: see `jaxvssl.models.norm.BatchNorm`.
    dtype: computation dtype; param_dtype: parameter dtype.
    remat_stages: stages (1: Conv2b/2c, 2: Mixed3, 3: Mixed4, 4: Mixed5) whose conv layers or
      Inception blocks are rematerialised (`nn.remat`); same parameters and gradients.
  """

  gating: bool = True
  width_multiplier: float = 1.0
  bn_groups: int = 1
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  remat_stages: tuple[int, ...] = ()

  def _widths(self, name: str) -> tuple[int, ...]:
    return tuple(scaled_width(c, self.width_multiplier) for c in S3D_BLOCKS[name])

  @property
  def feature_dim(self) -> int:
    w = self._widths('mixed5c')
    return w[0] + w[2] + w[4] + w[5]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False):
    """Encodes a clip `[B, T, H, W, C]`.

    Returns:
      `[B, D]` (D = 1024 at width 1); with return_stages=True `(feature, stages)` with 'stem'
      (Conv1a), 'stage1' (Conv2c), 'stage2' (Mixed3c), 'stage3' (Mixed4f), 'stage4' (Mixed5c)
      maps `[B, T', H', W', C]` and 'pool5' `[B, D]` (last map: max over H, W, mean over T).
    """
    if x.ndim != 5:
      raise ValueError(f'jaxvssl/models/s3d.py: input must be [B,T,H,W,C], got {x.shape}.')
    remat = check_remat_stages(self.remat_stages, 4, 'jaxvssl/models/s3d.py')
    conv_bn = conv_bn_factory(self)
    conv_bn_stage1 = conv_bn_factory(self, remat=1 in remat)

    def inception(widths, name, stage):
      block = maybe_remat(InceptionBlock3D, stage in remat, (2,))  # train (positional): static
      return block(widths, self.gating, conv_bn, self.dtype, self.param_dtype, name=name)

    w = lambda c: scaled_width(c, self.width_multiplier)
    pool = functools.partial(max_pool, clamp_to_input=True)
    stages = {}

    x = x.astype(self.dtype)
    x = conv_bn(w(64), (3, 7, 7), (2, 2, 2), name='conv1a')(x, train)
    stages['stem'] = x
    x = pool(x, (1, 3, 3), (1, 2, 2), ((0, 0), (1, 1), (1, 1)))
    x = conv_bn_stage1(w(64), (1, 1, 1), name='conv2b')(x, train)
    x = SepConvBN(w(192), 3, conv_bn_stage1, name='conv2c')(x, train)
    if self.gating:
      x = SelfGating(self.dtype, self.param_dtype, name='conv2c_gate')(x)
    stages['stage1'] = x
    x = pool(x, (1, 3, 3), (1, 2, 2), ((0, 0), (1, 1), (1, 1)))
    for name in ('mixed3b', 'mixed3c'):
      x = inception(self._widths(name), name, 2)(x, train)
    stages['stage2'] = x
    x = pool(x, (3, 3, 3), (2, 2, 2), ((1, 1),) * 3)
    for name in ('mixed4b', 'mixed4c', 'mixed4d', 'mixed4e', 'mixed4f'):
      x = inception(self._widths(name), name, 3)(x, train)
    stages['stage3'] = x
    x = pool(x, (2, 2, 2), (2, 2, 2))
    for name in ('mixed5b', 'mixed5c'):
      x = inception(self._widths(name), name, 4)(x, train)
    stages['stage4'] = x
    return backbone_outputs(x, stages, return_stages)
