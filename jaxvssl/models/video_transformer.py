"""CACL's video transformer T over per-frame features, and its frozen-frame-encoder wrapper.

CACL ("Cross-Architecture Self-supervised Video Representation Learning", Guo et al., CVPR 2022;
see docs/models.md): every frame goes through a FROZEN 2D ResNet-50 (2048-d); a trainable
linear layer maps the features to 768-d tokens; a learnable CLS token is prepended; learned
position embeddings cover 1 + S tokens (S = 32: the 16 frames of the clip followed by the 16 of its
shuffled copy, fed as one sequence); 6 pre-norm blocks with 6 heads and MLP ratio 4; a final
LayerNorm; the CLS token is the output. The 768 -> 128 projection is a head (heads.py).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxvssl.models import attention as attention_lib

Dtype = Any

_dense_init = nn.initializers.truncated_normal(0.02)
_LN_EPS = 1e-6


class SelfAttention(nn.Module):
  """Multi-head self-attention, softmax in float32. `[B, N, D]` -> `[B, N, D]`.

  Through `jax.nn.dot_product_attention` (`jaxvssl.models.attention`), except when attention
  dropout is active (train=True and attention_dropout > 0): that function has no dropout on the
  attention weights, so the weights are then formed explicitly.
  """

  num_heads: int
  attention_dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  attention_impl: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    b, n, d = x.shape
    if d % self.num_heads:
      raise ValueError(
        f'jaxvssl/models/video_transformer.py: token_dim {d} is not divisible by '
        f'num_heads {self.num_heads}.'
      )
    hd = d // self.num_heads
    qkv = nn.Dense(
      3 * d, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=_dense_init, name='qkv'
    )(x)
    q, k, v = jnp.split(qkv.reshape(b, n, 3, self.num_heads, hd), 3, axis=2)
    q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]  # [B, N, heads, hd]
    if train and self.attention_dropout > 0:
      logits = jnp.einsum('bqhd,bkhd->bhqk', q, k).astype(jnp.float32) * hd**-0.5
      weights = jax.nn.softmax(logits, axis=-1)
      weights = nn.Dropout(self.attention_dropout, deterministic=False)(weights)
      out = jnp.einsum('bhqk,bkhd->bqhd', weights.astype(v.dtype), v)
    else:
      out = attention_lib.dot_product_attention(q, k, v, self.attention_impl)
    out = out.reshape(b, n, d)
    return nn.Dense(
      d, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=_dense_init, name='proj'
    )(out)


class TransformerBlock(nn.Module):
  """Pre-norm block: x + Attn(LN(x)), then x + MLP(LN(x)) with GELU."""

  num_heads: int
  mlp_ratio: float = 4.0
  dropout: float = 0.0
  attention_dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  attention_impl: Optional[str] = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    d = x.shape[-1]
    norm = functools.partial(nn.LayerNorm, _LN_EPS, dtype=self.dtype, param_dtype=self.param_dtype)
    dense = functools.partial(
      nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=_dense_init
    )
    drop = nn.Dropout(self.dropout, deterministic=not train)
    y = SelfAttention(
      self.num_heads,
      self.attention_dropout,
      self.dtype,
      self.param_dtype,
      self.attention_impl,
      name='attn',
    )(norm(name='norm1')(x), train)
    x = x + drop(y)
    y = dense(int(d * self.mlp_ratio), name='mlp_fc1')(norm(name='norm2')(x))
    y = dense(d, name='mlp_fc2')(drop(nn.gelu(y, approximate=False)))
    return x + drop(y)


POOLS = ('cls', 'mean')


class VideoTransformer(nn.Module):
  """Transformer over a sequence of frame features: `[B, S, F]` -> CLS `[B, token_dim]`.

  The position embeddings are learned for the sequence length S seen at `init` (1 + S entries);
  applying to another length raises.

  Attributes:
    token_dim: width of the tokens (768 in CACL; tiny CPU config 32).
    num_layers, num_heads, mlp_ratio: 6, 6, 4 in CACL (tiny: 2, 2, 4).
    dropout, attention_dropout: dropout rates (RNG stream 'dropout' when train=True).
    dtype, param_dtype: computation and parameter dtypes.
    pool: the output: 'cls' (the CLS token, CACL) or 'mean' (the mean of the S frame tokens).
      Why 'mean' exists: at initialisation the CLS output hardly depends on the input (CLS token
      + its position dominate the small attention updates, so after the final LayerNorm two
      unrelated clips are nearly parallel); the mean of the frame tokens depends on the input
      from the first step. Same parameters either way.
    attention_impl: `jax.nn.dot_product_attention`'s implementation (None/'xla'/'cudnn').
    remat_stages: (1,) rematerialises every block (`nn.remat`; the blocks are one stage);
      () stores their activations. Same parameters and gradients.
  """

  token_dim: int = 768
  num_layers: int = 6
  num_heads: int = 6
  mlp_ratio: float = 4.0
  dropout: float = 0.0
  attention_dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  pool: str = 'cls'
  attention_impl: Optional[str] = None
  remat_stages: tuple[int, ...] = ()

  @property
  def feature_dim(self) -> int:
    return self.token_dim

  @nn.compact
  def __call__(self, features: jax.Array, train: bool = False) -> jax.Array:
    """`features` `[B, S, F]` (e.g. S = 32 frame features of clip + shuffled clip) -> `[B, D]`."""
    if self.pool not in POOLS:
      raise ValueError(
        f'jaxvssl/models/video_transformer.py: pool={self.pool!r}; use one of {POOLS}.'
      )
    if features.ndim != 3:
      raise ValueError(
        f'jaxvssl/models/video_transformer.py: features must be [B, S, F], got {features.shape}.'
      )
    where = 'jaxvssl/models/video_transformer.py'
    attention_lib.check_implementation(self.attention_impl, where)
    remat = bool(attention_lib.check_remat_stages(self.remat_stages, 1, where))
    b, s, _ = features.shape
    d = self.token_dim
    x = nn.Dense(
      d, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=_dense_init, name='embed'
    )(features.astype(self.dtype))
    cls_token = self.param('cls_token', _dense_init, (1, 1, d), self.param_dtype)
    if self.has_variable('params', 'pos_embed'):
      # Read the stored value so a length mismatch gets a clear error (not a flax shape error).
      pos = self.get_variable('params', 'pos_embed')
    else:
      pos = self.param('pos_embed', _dense_init, (1, 1 + s, d), self.param_dtype)
    if pos.shape[1] != 1 + s:
      raise ValueError(
        f'jaxvssl/models/video_transformer.py: the position embeddings were initialised for '
        f'{pos.shape[1] - 1} tokens but the input has S={s}.'
      )
    x = jnp.concatenate([jnp.broadcast_to(cls_token.astype(self.dtype), (b, 1, d)), x], axis=1)
    x = nn.Dropout(self.dropout, deterministic=not train)(x + pos.astype(self.dtype))
    block = attention_lib.maybe_remat(TransformerBlock, remat, (2,))  # train: static
    for i in range(self.num_layers):
      x = block(
        self.num_heads,
        self.mlp_ratio,
        self.dropout,
        self.attention_dropout,
        self.dtype,
        self.param_dtype,
        self.attention_impl,
        name=f'block{i}',
      )(x, train)
    x = nn.LayerNorm(_LN_EPS, dtype=self.dtype, param_dtype=self.param_dtype, name='norm')(x)
    if self.pool == 'mean':
      return jnp.mean(x[:, 1:], axis=1)
    return x[:, 0]


class FrameEncoderTransformer(nn.Module):
  """CACL's T: a frozen per-frame encoder followed by a trainable `VideoTransformer`.

  frames `[B, S, H, W, C]` -> frozen encoder on all B*S frames with train=False (BatchNorm uses its
  running statistics), under `jax.lax.stop_gradient` -> `[B, S, F]` -> transformer -> `[B, D]`.

  The frozen encoder's variables are NOT variables of this module: they are an argument of
  `__call__`. Keep them outside the trainable params (e.g. a separate field of the train state,
  loaded from the `frames` pretraining stage and never given to the optimizer), so that no
  optimizer update, weight decay or momentum-encoder EMA can touch them. This module's own
  variables are only the transformer's ('params/transformer/...').

  Attributes:
    frame_encoder: an unbound frame encoder (e.g. `get_frame_encoder('resnet50')`) mapping
      `[N, H, W, C]` -> `[N, F]`; it is only ever applied with the given variables.
    transformer: the `VideoTransformer`.
    frame_chunk_size: if set, the frames are encoded `frame_chunk_size` at a time with
      `jax.lax.map` to bound activation memory (must divide B*S); None encodes all at once.
  """

  frame_encoder: nn.Module
  transformer: VideoTransformer
  frame_chunk_size: Optional[int] = None

  def setup(self):
    # An unbound copy that is never registered as a child, so its variables cannot leak into
    # this module's collections; `self.transformer` is adopted as the child 'transformer'.
    object.__setattr__(self, '_frozen_encoder', self.frame_encoder.clone(parent=None))

  def encode_frames(
    self, frames: jax.Array, frame_encoder_variables: Mapping[str, Any]
  ) -> jax.Array:
    """Frozen per-frame features: `[B, S, H, W, C]` -> `[B, S, F]` (no gradient)."""
    b, s = frames.shape[:2]
    flat = frames.reshape((b * s,) + frames.shape[2:])
    encode = lambda x: self._frozen_encoder.apply(frame_encoder_variables, x, train=False)
    if self.frame_chunk_size is None:
      feats = encode(flat)
    else:
      if (b * s) % self.frame_chunk_size:
        raise ValueError(
          f'jaxvssl/models/video_transformer.py: frame_chunk_size={self.frame_chunk_size} '
          f'does not divide B*S={b * s}.'
        )
      chunks = flat.reshape((-1, self.frame_chunk_size) + flat.shape[1:])
      feats = jax.lax.map(encode, chunks).reshape(b * s, -1)
    return jax.lax.stop_gradient(feats).reshape(b, s, -1)

  def __call__(
    self, frames: jax.Array, frame_encoder_variables: Mapping[str, Any], train: bool = False
  ) -> jax.Array:
    """`frames` `[B, S, H, W, C]`, the frozen encoder's variables ({'params', 'batch_stats'})
    -> CLS feature `[B, token_dim]`."""
    if frames.ndim != 5:
      raise ValueError(
        f'jaxvssl/models/video_transformer.py: frames must be [B, S, H, W, C], got {frames.shape}.'
      )
    return self.transformer(self.encode_frames(frames, frame_encoder_variables), train=train)
