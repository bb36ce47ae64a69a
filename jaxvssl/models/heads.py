"""Projection and classification heads applied to backbone features.

One module covers every head of the four methods:
  * linear projection 512 -> 128:            MLPHead(hidden_dims=(), out_dim=128)
  * 2-layer MLP CLS -> 2048 -> ReLU -> 128:  MLPHead(hidden_dims=(2048,), out_dim=128)
  * CACL shuffle-degree classifier:          MLPHead((512,), 16, dropout=0.5)
  * mlfo per-timestep heads (1x1x1 conv MLP C -> C -> 128): MLPHead((C,), 128) on `[B, T, C]`
    (a 1x1x1 conv is a Dense on the channel axis).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models.norm import BatchNorm

Dtype = Any


class MLPHead(nn.Module):
  """`[..., D_in]` -> `[..., out_dim]`: (Dense -> [BN] -> ReLU -> [Dropout]) per hidden width, then a
  final Dense (no activation, no BN).

  Attributes:
    hidden_dims: widths of the hidden layers (empty: a single linear layer).
    out_dim: output width.
    use_bn: BatchNorm after every hidden Dense (statistics over all leading axes, grouped over the
      batch axis by `bn_groups`, see `jaxvssl.models.norm.BatchNorm`).
    dropout: dropout rate after every hidden ReLU (RNG stream 'dropout' when train=True).
    bn_groups, bn_momentum, bn_epsilon: BatchNorm settings.
    dtype, param_dtype: computation and parameter dtypes.
  """

  hidden_dims: Sequence[int]
  out_dim: int
  use_bn: bool = False
  dropout: float = 0.0
  bn_groups: int = 1
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    for i, width in enumerate(self.hidden_dims):
      x = nn.Dense(
        width,
        use_bias=not self.use_bn,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=f'hidden{i}',
      )(x)
      if self.use_bn:
        x = BatchNorm(
          self.bn_groups,
          self.bn_momentum,
          self.bn_epsilon,
          dtype=self.dtype,
          param_dtype=self.param_dtype,
          name=f'bn{i}',
        )(x, use_running_average=not train)
      x = nn.relu(x)
      if self.dropout > 0.0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.out_dim, dtype=self.dtype, param_dtype=self.param_dtype, name='out')(x)
