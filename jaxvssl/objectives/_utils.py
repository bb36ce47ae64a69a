"""Small numerical helpers shared by the objectives.

`l2_normalize` is public, re-exported as `jaxvssl.objectives.l2_normalize` (every method normalises
its embeddings and queues with it); the other helpers are private to the objectives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Norms below this are treated as zero when L2-normalising, so an all-zero vector maps to zero
# instead of NaN (and its gradient stays finite).
_NORM_EPS = 1e-12

# Similarity matmuls run at full float32 precision: GPUs/TPUs would otherwise use TF32/bf16
# passes, whose ~1e-3 relative error is amplified by 1/temperature (and breaks the
# |u|^2 + |v|^2 - 2 u.v expansion of the shuffle distance). These matmuls are tiny.
HIGHEST = jax.lax.Precision.HIGHEST


def as_f32(x: jax.Array) -> jax.Array:
  """Casts to float32: every objective does its internal math in float32, even for bf16 inputs."""
  return jnp.asarray(x).astype(jnp.float32)


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """L2-normalises `x` along `axis` in float32; zero vectors stay zero.

  Uses rsqrt(max(|x|^2, eps^2)) so that the gradient is finite everywhere.
  """
  x = as_f32(x)
  sq = jnp.sum(x * x, axis=axis, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, _NORM_EPS**2))


def safe_sqrt(sq: jax.Array) -> jax.Array:
  """sqrt of non-negative `sq` whose gradient at 0 is 0 instead of NaN (or inf)."""
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
  """Euclidean norm along `axis` whose gradient at 0 is 0 instead of NaN."""
  return safe_sqrt(jnp.sum(as_f32(x) ** 2, axis=axis))


def cosine_logits(a: jax.Array, b: jax.Array, temperature: float) -> jax.Array:
  """Cosine-similarity matrix divided by the temperature.

  Args:
    a: [M, D]. b: [N, D]. temperature: > 0.
  Returns:
    float32 [M, N] with entry (i, j) = cos(a_i, b_j) / temperature.
  """
  return jnp.matmul(l2_normalize(a), l2_normalize(b).T, precision=HIGHEST) / temperature
