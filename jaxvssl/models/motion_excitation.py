"""TEA motion excitation (ME) module, used by MLFO's L_aug.

MLFO: "Enhancing Self-supervised Video Representation Learning via Multi-level Feature
Optimization" (Qian et al., ICCV 2021, eq. 11-12; TEA is its ref. [38]), method `mlfo`.

Given a feature map X [B, T, H, W, C]:
  X_r  = BN(conv1x1(X))                          reduce channels to C_r = max(C // reduction, 1)
  M(t) = dwconv3x3(X_r(t+1)) - X_r(t), M(T-1) = 0   feature-level temporal difference
  A    = BN(conv1x1(spatial_mean(M)))            back to C channels, [B, T, 1, 1, C]
  out  = X + X * (sigmoid(A) - 0.5)              residual channel excitation
As in TEA, the channel-wise 3x3 convolution is applied to step t+1 only (the difference is
"transformed next step minus current step"). All convolutions act per frame (temporal kernel 1).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvssl.models.conv import Conv
from jaxvssl.models.norm import BatchNorm


class MotionExcitation(nn.Module):
  """TEA motion excitation. Input and output [B, T, H, W, C] (T >= 1).

  Attributes:
    reduction: channel reduction ratio r of the bottleneck (16 in TEA).
    bn_groups: BatchNorm statistic groups (see jaxvssl.models.norm.BatchNorm).
    dtype: computation dtype.
  """

  reduction: int = 16
  bn_groups: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if x.ndim != 5:
      raise ValueError(f'MotionExcitation: input must be [B, T, H, W, C], got {x.shape}')
    c = x.shape[-1]
    c_r = max(c // self.reduction, 1)
    x = x.astype(self.dtype)
    xr = Conv(c_r, (1, 1, 1), use_bias=False, dtype=self.dtype, name='reduce')(x)
    xr = BatchNorm(num_groups=self.bn_groups, dtype=self.dtype, name='reduce_bn')(
      xr, use_running_average=not train
    )
    transformed = Conv(
      c_r,
      (1, 3, 3),
      padding='SAME',
      feature_group_count=c_r,
      use_bias=False,
      dtype=self.dtype,
      name='transform',
    )(xr)
    # Convolving every step (the first is unused) keeps the parameters defined even when T == 1.
    diff = transformed[:, 1:] - xr[:, :-1]  # [B, T-1, H, W, C_r]
    diff = jnp.concatenate([diff, jnp.zeros_like(xr[:, :1])], axis=1)  # zero at the last step
    pooled = jnp.mean(diff, axis=(2, 3), keepdims=True)  # [B, T, 1, 1, C_r]
    a = Conv(c, (1, 1, 1), use_bias=False, dtype=self.dtype, name='expand')(pooled)
    a = BatchNorm(num_groups=self.bn_groups, dtype=self.dtype, name='expand_bn')(
      a, use_running_average=not train
    )
    gate = jax.nn.sigmoid(a) - 0.5
    return x + x * gate
