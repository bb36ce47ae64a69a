"""MViT (v1) with pooling attention (Fan et al., ICCV 2021), flax.linen, input NDHWC.

MViT-B (16x4) is SCVRL's backbone ("SCVRL: Shuffled Contrastive Video Representation Learning",
Dorkenwald et al., CVPRW 2022; see docs/models.md). Facts used here, all fields of `MViT`:
  * cube/patch embedding: conv, kernel (3,7,7), stride (2,4,4), 96 channels; SCVRL changes it to
    kernel (2,7,7), stride (2,4,4) with no temporal padding, so every token covers exactly one
    group of 2 frames ('mvit_b_scvrl' in the registry).
  * a CLS token and a separable position embedding: spatial [H*W, C] + temporal [T, C] (+ one
    for the CLS token).
  * 16 blocks in 4 stages: 96 x1, 192 x2, 384 x11, 768 x2 (`depths=(1, 2, 11, 2)`); 1 head,
    doubled at each stage change; query pooling stride (1,2,2) at the first block of stages 2-4;
    key/value pooling in every block with an adaptive stride starting at (1,8,8) and divided by
    every query stride (so (1,8,8), (1,4,4), (1,2,2), (1,1,1)); pooling = depthwise 3x3x3 conv +
    LayerNorm per head (shared by the heads); stochastic depth rising linearly to 0.2.
  * As in MViT v1, the channel expansion happens in the MLP of the LAST block of a stage
    (dim -> dim_out, with a linear projection of the shortcut), and the attention of the first
    block of the next stage runs at the new width with the new number of heads. Hence the
    'stageK' outputs already have the width of stage K+1 (stage1: 192 ch, ..., stage4: 768).
  * final LayerNorm; the output is the CLS token `[B, 768 * width_multiplier]`.

Width rounding follows MViT's rule: widths are multiples of the number of heads, rounded to the
nearest multiple and bumped by one multiple if that lost more than 10%.

Small inputs: pooling convs pad k//2, so every axis keeps >= 1 position whatever the input (32 px
clips give an 8x8 token grid, pooled to 4, 2, 1). The position embeddings are created for the
token grid of the input seen at `init`; at `apply` another grid size is handled by resizing them
(linear interpolation), so evaluation at another resolution or length works.

Stochastic depth draws from the 'dropout' RNG stream when `train=True` and `drop_path_rate > 0`:
call `apply(..., train=True, rngs={'dropout': key})`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn

from jaxvssl.models import attention as attention_lib
from jaxvssl.models.conv import Conv

Dtype = Any
Shape3 = tuple[int, int, int]

_dense_init = nn.initializers.truncated_normal(0.02)
_LN_EPS = 1e-6
# The clip feature: the CLS token or the mean of the patch tokens (SCVRL Table 8d).
POOLS = ('cls', 'mean')


def round_width(
  width: float, multiplier: float, divisor: int = 1, min_width: Optional[int] = None
) -> int:
  """MViT's width rounding: `width * multiplier` to the nearest multiple of `divisor` (at least
  `min_width`, default `divisor`), plus one `divisor` if rounding lost more than 10%."""
  width = width * multiplier
  min_width = min_width or divisor
  out = max(min_width, int(width + divisor / 2) // divisor * divisor)
  if out < 0.9 * width:
    out += divisor
  return int(out)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """Static configuration of one MViT block."""

  dim: int
  dim_out: int
  num_heads: int
  q_stride: Shape3
  kv_stride: Shape3
  drop_path: float
  stage: int  # 1-based stage this block belongs to


def mvit_schedule(
  depths: Sequence[int],
  embed_dim: int,
  num_heads: int,
  dim_mul: float,
  head_mul: float,
  q_stride: Shape3,
  kv_stride_adaptive: Shape3,
  drop_path_rate: float,
) -> list[BlockSpec]:
  """Per-block widths, heads, pooling strides and drop-path rates (MViT v1 rules)."""
  depth = sum(depths)
  starts = [int(s) for s in np.cumsum(depths)[:-1]]  # first block of stages 2..
  dim_muls = [dim_mul if i in starts else 1.0 for i in range(depth + 1)]
  head_muls = [head_mul if i in starts else 1.0 for i in range(depth + 1)]
  drop = np.linspace(0.0, drop_path_rate, depth) if depth > 1 else np.zeros(depth)
  specs = []
  kv = tuple(kv_stride_adaptive)
  dim, heads = embed_dim, num_heads
  for i in range(depth):
    qs = tuple(q_stride) if i in starts else (1, 1, 1)
    kv = tuple(max(k // q, 1) for k, q in zip(kv, qs))
    heads = round_width(heads, head_muls[i])
    dim = round_width(dim, dim_muls[i], divisor=heads)
    dim_out = round_width(dim, dim_muls[i + 1], divisor=round_width(heads, head_muls[i + 1]))
    stage = 1 + sum(i >= s for s in starts)
    specs.append(BlockSpec(dim, dim_out, heads, qs, kv, float(drop[i]), stage))
  return specs


class DropPath(nn.Module):
  """Stochastic depth: drops the whole residual branch per sample (RNG stream 'dropout')."""

  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    if deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class AttentionPool(nn.Module):
  """Pools a per-head token sequence with a depthwise conv + LayerNorm (the CLS token skips the
  conv). `[B, 1 + T*H*W, heads, hd]` -> `([B, 1 + T'*H'*W', heads, hd], (T', H', W'))`."""

  kernel: Shape3
  stride: Shape3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, thw: Shape3):
    b, _, heads, hd = x.shape
    cls_tok, tokens = x[:, :1], x[:, 1:]
    grid = tokens.reshape((b,) + tuple(thw) + (heads, hd))
    grid = jnp.moveaxis(grid, 4, 1).reshape((b * heads,) + tuple(thw) + (hd,))
    grid = Conv(
      hd,
      self.kernel,
      strides=self.stride,
      padding=tuple((k // 2, k // 2) for k in self.kernel),
      feature_group_count=hd,
      use_bias=False,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='conv',
    )(grid)
    new_thw = grid.shape[1:4]
    grid = grid.reshape((b, heads, -1, hd))
    tokens = jnp.moveaxis(grid, 1, 2)  # [B, T'H'W', heads, hd]
    x = jnp.concatenate([cls_tok, tokens.astype(cls_tok.dtype)], axis=1)
    x = nn.LayerNorm(_LN_EPS, dtype=self.dtype, param_dtype=self.param_dtype, name='norm')(x)
    return x, tuple(new_thw)


class MultiScaleAttention(nn.Module):
  """Pooling attention. `[B, 1 + T*H*W, dim]` -> `[B, 1 + T'*H'*W', dim]`, new grid."""

  dim: int
  num_heads: int
  q_stride: Shape3
  kv_stride: Shape3
  kernel: Shape3
  qkv_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  attention_impl: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array, thw: Shape3):
    b, n, _ = x.shape
    hd = self.dim // self.num_heads
    dense = functools.partial(
      nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=_dense_init
    )
    q, k, v = (
      dense(self.dim, use_bias=self.qkv_bias, name=name)(x).reshape(b, n, self.num_heads, hd)
      for name in ('q', 'k', 'v')
    )
    pool = functools.partial(
      AttentionPool, kernel=self.kernel, dtype=self.dtype, param_dtype=self.param_dtype
    )
    q_thw = thw
    # MViT v1: queries are pooled only where they are strided; keys/values in every block.
    if math.prod(self.q_stride) > 1:
      q, q_thw = pool(stride=self.q_stride, name='pool_q')(q, thw)
    if math.prod(self.kernel) > 1 or math.prod(self.kv_stride) > 1:
      k, _ = pool(stride=self.kv_stride, name='pool_k')(k, thw)
      v, _ = pool(stride=self.kv_stride, name='pool_v')(v, thw)
    # [B, Tq, heads, hd] x [B, Tk, heads, hd] -> [B, Tq, heads, hd]; Tk < Tq after kv pooling.
    out = attention_lib.dot_product_attention(q, k, v, self.attention_impl)
    return dense(self.dim, name='proj')(out.reshape(b, -1, self.dim)), q_thw


class MultiScaleBlock(nn.Module):
  """Pre-norm MViT block: pooled attention + MLP (dim -> dim * mlp_ratio -> dim_out).

  `[B, 1 + T*H*W, dim]` -> `[B, 1 + T'*H'*W', dim_out]`, (T', H', W') = `pooled_grid`.
  """

  spec: BlockSpec
  kernel: Shape3
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  attention_impl: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array, thw: Shape3, train: bool):
    s = self.spec
    norm = functools.partial(nn.LayerNorm, _LN_EPS, dtype=self.dtype, param_dtype=self.param_dtype)
    dense = functools.partial(
      nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=_dense_init
    )
    drop_path = DropPath(s.drop_path)
    y, new_thw = MultiScaleAttention(
      s.dim,
      s.num_heads,
      s.q_stride,
      s.kv_stride,
      self.kernel,
      self.qkv_bias,
      self.dtype,
      self.param_dtype,
      self.attention_impl,
      name='attn',
    )(norm(name='norm1')(x), thw)
    if math.prod(s.q_stride) > 1:
      # Shortcut pooled like the queries: max-pool, kernel s+1 where the stride s > 1.
      skip_kernel = tuple(q + 1 if q > 1 else q for q in s.q_stride)
      cls_tok, tokens = x[:, :1], x[:, 1:]
      grid = tokens.reshape((x.shape[0],) + tuple(thw) + (s.dim,))
      grid = nn.max_pool(
        grid, skip_kernel, strides=s.q_stride, padding=tuple((k // 2, k // 2) for k in skip_kernel)
      )
      x = jnp.concatenate([cls_tok, grid.reshape(x.shape[0], -1, s.dim)], axis=1)
    x = x + drop_path(y, deterministic=not train)
    x_norm = norm(name='norm2')(x)
    h = dense(int(s.dim * self.mlp_ratio), name='mlp_fc1')(x_norm)
    h = dense(s.dim_out, name='mlp_fc2')(nn.gelu(h, approximate=False))
    if s.dim != s.dim_out:
      x = dense(s.dim_out, name='proj')(x_norm)
    # Only arrays leave the block (an nn.remat block may not return Python ints); the caller
    # gets the new grid from `pooled_grid`, which this checks.
    if tuple(new_thw) != pooled_grid(thw, self.kernel, s.q_stride):
      raise AssertionError(f'mvit: grid {new_thw} != pooled_grid {thw} {s.q_stride}')
    return x + drop_path(h, deterministic=not train)


def pooled_grid(thw: Shape3, kernel: Shape3, q_stride: Shape3) -> Shape3:
  """Token grid after a block with query stride `q_stride`: the output of the pooling conv
  (kernel `kernel`, padding k // 2) when the stride pools, else `thw`."""
  if math.prod(q_stride) <= 1:
    return tuple(thw)
  return tuple((n + 2 * (k // 2) - k) // s + 1 for n, k, s in zip(thw, kernel, q_stride))


def _resize(embed: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Linearly resizes a position embedding `[*grid, C]` to `[*shape, C]` (no-op if equal)."""
  if tuple(embed.shape[:-1]) == tuple(shape):
    return embed
  return jax.image.resize(embed, tuple(shape) + embed.shape[-1:], method='linear')


class MViT(nn.Module):
  """Multiscale Vision Transformer (v1), input `[B, T, H, W, 3]`, output CLS `[B, D]`.

  Attributes:
    depths: blocks per stage, MViT-B (1, 2, 11, 2).
    embed_dim, num_heads: width and heads of stage 1 (96, 1).
    dim_mul, head_mul: multipliers at each stage change (2, 2).
    mlp_ratio, qkv_bias: MLP hidden ratio (4) and q/k/v biases (True).
    patch_kernel, patch_stride, patch_padding: cube embedding conv; padding None means
      (k - 1) // 2 per axis (so (3,7,7) -> (1,3,3) and SCVRL's (2,7,7) -> (0,3,3)).
    q_stride: query pooling stride at stage changes (1,2,2).
    kv_stride_adaptive: key/value pooling stride of the first block (1,8,8).
    pool_kernel: pooling conv kernel (3,3,3).
    drop_path_rate: stochastic depth of the last block (0.2), linear from 0.
    pool: the clip feature: 'cls' (the final-LayerNorm CLS token, MViT's default) or 'mean' (the
      mean of the final-LayerNorm patch tokens, CLS excluded; SCVRL Table 8d). The parameters
      are the same for both (the CLS token still attends).
    width_multiplier: scales embed_dim (rounded to a multiple of num_heads).
    dtype, param_dtype: computation and parameter dtypes.
    attention_impl: `jax.nn.dot_product_attention`'s implementation (None/'xla'/'cudnn';
      `jaxvssl.models.attention`).
    remat_stages: stages (1..len(depths)) whose blocks are rematerialised (`nn.remat`):
      activations recomputed in the backward pass; same parameters and gradients.
  """

  depths: Sequence[int] = (1, 2, 11, 2)
  embed_dim: int = 96
  num_heads: int = 1
  dim_mul: float = 2.0
  head_mul: float = 2.0
  mlp_ratio: float = 4.0
  qkv_bias: bool = True
  patch_kernel: Shape3 = (3, 7, 7)
  patch_stride: Shape3 = (2, 4, 4)
  patch_padding: Optional[Shape3] = None
  q_stride: Shape3 = (1, 2, 2)
  kv_stride_adaptive: Shape3 = (1, 8, 8)
  pool_kernel: Shape3 = (3, 3, 3)
  drop_path_rate: float = 0.2
  pool: str = 'cls'
  width_multiplier: float = 1.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  attention_impl: Optional[str] = None
  remat_stages: Sequence[int] = ()

  def schedule(self) -> list[BlockSpec]:
    """The static per-block configuration."""
    if len(self.depths) < 1 or min(self.depths) < 1:
      raise ValueError(
        f'jaxvssl/models/mvit.py: depths must be >= 1 per stage, got {tuple(self.depths)}.'
      )
    embed = round_width(self.embed_dim, self.width_multiplier, divisor=self.num_heads)
    return mvit_schedule(
      self.depths,
      embed,
      self.num_heads,
      self.dim_mul,
      self.head_mul,
      self.q_stride,
      self.kv_stride_adaptive,
      self.drop_path_rate,
    )

  @property
  def feature_dim(self) -> int:
    return self.schedule()[-1].dim_out

  def _grid_param(self, name: str, shape: tuple[int, ...]) -> jax.Array:
    """A position embedding created with the grid of the init input; at apply time the stored
    value is returned whatever its grid (`self.param` would reject another shape), and the
    caller resizes it."""
    if self.has_variable('params', name):
      return self.get_variable('params', name)
    return self.param(name, _dense_init, shape, self.param_dtype)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_stages: bool = False):
    """Encodes a clip `[B, T, H, W, C]`.

    Returns:
      The final-LayerNorm CLS token `[B, D]` (pool='mean': the mean patch token) (D = 768 for MViT-B); with return_stages=True
      `(feature, stages)`: 'stem' = patch embedding `[B, T/2, H/4, W/4, 96]`, 'stage1'..'stage4'
      = token maps after the last block of each stage, CLS removed, `[B, T', H', W', C]`
      (before the final LayerNorm), 'pool5' = the pooled feature `[B, D]`.
    """
    if x.ndim != 5:
      raise ValueError(f'jaxvssl/models/mvit.py: input must be [B,T,H,W,C], got {x.shape}.')
    if self.pool not in POOLS:
      raise ValueError(f'jaxvssl/models/mvit.py: pool={self.pool!r} not in {POOLS}.')
    attention_lib.check_implementation(self.attention_impl, 'jaxvssl/models/mvit.py')
    remat = attention_lib.check_remat_stages(
      self.remat_stages, len(self.depths), 'jaxvssl/models/mvit.py'
    )
    specs = self.schedule()
    embed = specs[0].dim
    padding = self.patch_padding or tuple((k - 1) // 2 for k in self.patch_kernel)
    x = Conv(
      embed,
      self.patch_kernel,
      strides=self.patch_stride,
      padding=tuple((p, p) for p in padding),
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name='patch_embed',
    )(x.astype(self.dtype))
    stages = {'stem': x}
    b, t, h, w, c = x.shape
    thw = (t, h, w)

    # Separable position embedding; parameter shapes come from the grid seen at init.
    pos_s = self._grid_param('pos_embed_spatial', (h, w, c))
    pos_t = self._grid_param('pos_embed_temporal', (t, c))
    pos_cls = self.param('pos_embed_class', _dense_init, (1, c), self.param_dtype)
    cls_token = self.param('cls_token', _dense_init, (1, c), self.param_dtype)
    pos = _resize(pos_s, (h, w))[None, :, :, :] + _resize(pos_t, (t,))[:, None, None, :]
    pos = jnp.concatenate([pos_cls, pos.reshape(t * h * w, c)], axis=0)
    tokens = jnp.concatenate(
      [jnp.broadcast_to(cls_token.astype(self.dtype), (b, 1, c)), x.reshape(b, -1, c)], axis=1
    )
    x = tokens + pos.astype(self.dtype)[None]

    for i, spec in enumerate(specs):
      # thw (a tuple of ints) and train are Python values the block branches on: static.
      block = attention_lib.maybe_remat(MultiScaleBlock, spec.stage in remat, (2, 3))
      x = block(
        spec,
        self.pool_kernel,
        self.mlp_ratio,
        self.qkv_bias,
        self.dtype,
        self.param_dtype,
        self.attention_impl,
        name=f'block{i}',
      )(x, thw, train)
      thw = pooled_grid(thw, self.pool_kernel, spec.q_stride)
      if i == len(specs) - 1 or specs[i + 1].stage != spec.stage:
        stages[f'stage{spec.stage}'] = x[:, 1:].reshape((b,) + tuple(thw) + (x.shape[-1],))
    x = nn.LayerNorm(_LN_EPS, dtype=self.dtype, param_dtype=self.param_dtype, name='norm')(x)
    feature = x[:, 0] if self.pool == 'cls' else jnp.mean(x[:, 1:], axis=1)
    if not return_stages:
      return feature
    stages['pool5'] = feature
    return feature, stages
