"""Multi-head attention through `jax.nn.dot_product_attention`, and per-stage rematerialisation.

Attention: MViT's pooling attention and CACL's video transformer call `dot_product_attention`
here instead of writing softmax(QK^T / sqrt(d)) V by hand, so that the fused implementations of
`jax.nn.dot_product_attention` can be chosen. In jax 0.10 its `implementation=None` is always
the XLA formulation (logits accumulated in float32, softmax in float32, probabilities cast back
to the value dtype); cuDNN's fused flash attention runs only with `implementation='cudnn'`,
on an NVIDIA GPU, with float16/bfloat16 inputs and a head width that is a multiple of 8 and at
most 128 (MViT-B: 96; CACL's transformer: 128). The backbones take it as the field
`attention_impl` (`config.model.kwargs.attention_impl='cudnn'`, docs/models.md).

Remat: `maybe_remat` wraps a block class in `flax.linen.remat` (the block's activations are
recomputed in the backward pass instead of stored), keeping the block's name and so its
parameter paths: a checkpoint or weight file loads the same with and without remat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# `implementation` of jax.nn.dot_product_attention: None (XLA in jax 0.10), 'xla', 'cudnn'.
IMPLEMENTATIONS = (None, 'xla', 'cudnn')


def check_implementation(implementation: str | None, where: str) -> None:
  """Raises ValueError unless `implementation` is one of `IMPLEMENTATIONS`."""
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(
      f'{where}: attention_impl={implementation!r}; use one of {IMPLEMENTATIONS} '
      '(None: the XLA formulation; cudnn: fused attention on an NVIDIA GPU, bf16/fp16 only)'
    )


def dot_product_attention(
  q: jax.Array, k: jax.Array, v: jax.Array, implementation: str | None = None
) -> jax.Array:
  """softmax(q k^T / sqrt(head_dim)) v per head.

  Args:
    q: `[B, Tq, heads, head_dim]`.
    k, v: `[B, Tk, heads, head_dim]` (Tk may differ from Tq: MViT pools keys and values).
    implementation: see `IMPLEMENTATIONS`.
  Returns:
    `[B, Tq, heads, head_dim]` in the dtype of `v`; the softmax is computed in float32.
  """
  return jax.nn.dot_product_attention(q, k, v, implementation=implementation)


def reference_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """The hand-written attention the models used before (kept to test `dot_product_attention`).

  Same shapes as `dot_product_attention`; logits in the input dtype cast to float32, softmax in
  float32, weights cast back to the value dtype.
  """
  hd = q.shape[-1]
  logits = jnp.einsum('bqhd,bkhd->bhqk', q, k).astype(jnp.float32) * hd**-0.5
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  return jnp.einsum('bhqk,bkhd->bqhd', weights, v)


def check_remat_stages(stages: Sequence[int], num_stages: int, where: str) -> tuple[int, ...]:
  """`stages` as a tuple after checking every entry is a stage number in 1..num_stages."""
  stages = tuple(stages)
  bad = [s for s in stages if not isinstance(s, int) or not 1 <= s <= num_stages]
  if bad:
    raise ValueError(
      f'{where}: remat_stages={stages} has {bad}; stages are numbered 1..{num_stages}'
    )
  return stages


def maybe_remat(block: type[nn.Module], enabled: bool, static_argnums: tuple[int, ...]) -> Any:
  """`nn.remat(block)` when `enabled`, else `block` unchanged.

  `static_argnums` index the block's `__call__` arguments with `self` as 0 (e.g. `train` of
  `__call__(self, x, train)` is 2): Python values the block branches on must be static, and
  they must then be passed positionally.
  """
  if not enabled:
    return block
  return nn.remat(block, static_argnums=static_argnums)
