"""Temporal objectives: MLFO's timestamp retrieval and rate_order's shuffle distance.

Used by MLFO ("Enhancing Self-supervised Video Representation Learning via Multi-level Feature
Optimization", Qian et al., ICCV 2021: `timestamp_retrieval_loss`) and rate_order (IEEE TCSVT 2021,
DOI 10.1109/TCSVT.2021.3114209: the shuffle distance and its contrastive logits). Methods `mlfo`
and `rate_order`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvssl.objectives._utils import HIGHEST, as_f32, l2_normalize, safe_norm, safe_sqrt


def timestamp_retrieval_loss(
  short: jax.Array, long: jax.Array, positions: jax.Array, temperature: float
) -> jax.Array:
  """MLFO L_ret (eq. 13), in both directions.

  short -> long: each timestamp t of the short clip retrieves long[positions[t]] among all Tl
  timestamps of the long sequence of the same sample (eq. 13).
  long -> short: each matched long timestamp long[positions[t]] retrieves short[t] among the Ts
  timestamps of the short clip.
  Similarities are cosine / temperature.

  Args:
    short: [B, Ts, D] per-timestamp features of the short clip.
    long: [B, Tl, D] per-timestamp features of the long sequence.
    positions: int [B, Ts], index into `long` of each short timestamp; distinct within a row
      (otherwise the long -> short direction has two correct answers).
    temperature: tau > 0.
  Returns:
    float32 scalar: mean over samples, timestamps and the two directions.
  """
  s = l2_normalize(short)
  l = l2_normalize(long)
  positions = positions.astype(jnp.int32)
  logits = jnp.einsum('bsd,bld->bsl', s, l, precision=HIGHEST) / temperature  # [B, Ts, Tl]
  log_p = jax.nn.log_softmax(logits, axis=-1)
  short_to_long = -jnp.take_along_axis(log_p, positions[..., None], axis=-1)[..., 0]  # [B, Ts]
  # Rows of the matched long timestamps: logits[b, :, positions[b, t]] -> [B, Ts(query), Ts].
  matched = jnp.take_along_axis(logits, positions[:, None, :], axis=-1)  # [B, Ts, Ts]: (s, t)
  rev = jnp.swapaxes(matched, 1, 2)  # (query t = long[positions[t]], candidate s = short[s])
  long_to_short = -jnp.diagonal(jax.nn.log_softmax(rev, axis=-1), axis1=1, axis2=2)
  return 0.5 * (jnp.mean(short_to_long) + jnp.mean(long_to_short))


def _greedy_min_matching(dist: jax.Array) -> jax.Array:
  """Greedy minimum matching on the last two axes (rate_order, TCSVT 2021, Algorithm 1 lines 8-13).

  k times: take the smallest remaining entry, add it, remove its row and column.

  Args:
    dist: [..., k, k] non-negative part distances.
  Returns:
    [...] total of the k selected entries; gradients flow into the selected entries.
  """
  k = dist.shape[-1]
  batch_shape = dist.shape[:-2]
  flat = dist.reshape(batch_shape + (k * k,))
  rows = jnp.arange(k * k) // k
  cols = jnp.arange(k * k) % k
  removed = jnp.zeros(batch_shape + (k * k,), dtype=bool)
  total = jnp.zeros(batch_shape, dtype=dist.dtype)
  for _ in range(k):  # k is static and small (2..5): unrolled.
    idx = jnp.argmin(jnp.where(removed, jnp.inf, flat), axis=-1)  # ties -> first (row-major)
    total = total + jnp.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    removed = removed | (rows == (idx // k)[..., None]) | (cols == (idx % k)[..., None])
  return total


def _part_size(fn_name: str, dim_x: int, dim_y: int, num_segments: int) -> int:
  """Width of one of the k = num_segments parts of two D-dim features; D must agree and divide."""
  if dim_x % num_segments or dim_y != dim_x:
    raise ValueError(
      f'{fn_name}: feature dims {dim_x}, {dim_y} must be equal '
      f'and divisible by num_segments={num_segments}'
    )
  return dim_x // num_segments


def shuffle_distance(
  x: jax.Array, y: jax.Array, num_segments: int, squared: bool = False
) -> jax.Array:
  """Shuffle distance of rate_order (TCSVT 2021 Sec. F, eq. 9-12, Algorithm 1).

  Both D-dim vectors are split into k = num_segments equal parts, the k x k matrix of
  Euclidean distances ||x^(i) - y^(j)|| is built, and the greedy minimum matching (repeatedly
  take the smallest remaining entry, remove its row and column) is summed.

  Args:
    x, y: [..., D] with broadcast-compatible leading axes; D divisible by num_segments.
    num_segments: k, static.
    squared: sum the SQUARED distances of the matched parts (the matching is the same: it depends
      only on the order of the entries). For unit vectors this is ||x - y_aligned||^2 =
      2 - 2 cos(x, y_aligned), y_aligned = y with its parts moved to their matches.
  Returns:
    float32 [...] distance (0 iff y's parts are a permutation of x's parts).
  """
  x, y = as_f32(x), as_f32(y)
  part = _part_size('shuffle_distance', x.shape[-1], y.shape[-1], num_segments)
  xp = x.reshape(x.shape[:-1] + (num_segments, 1, part))
  yp = y.reshape(y.shape[:-1] + (1, num_segments, part))
  if squared:
    return _greedy_min_matching(jnp.sum((xp - yp) ** 2, axis=-1))
  return _greedy_min_matching(safe_norm(xp - yp, axis=-1))


def pairwise_shuffle_distance(
  query: jax.Array, keys: jax.Array, num_segments: int, squared: bool = False
) -> jax.Array:
  """Shuffle distance between every query and every key (e.g. MoCo queue negatives).

  Memory O(B N k^2) instead of O(B N D): part distances come from squared norms and one
  matmul, ||u - v||^2 = |u|^2 + |v|^2 - 2 u.v (clipped at 0 against round-off).

  Args:
    query: [B, D]. keys: [N, D]. num_segments: k, divides D.
    squared: sum the squared distances of the matched parts (see `shuffle_distance`).
  Returns:
    float32 [B, N].
  """
  q, kk = as_f32(query), as_f32(keys)
  part = _part_size('pairwise_shuffle_distance', q.shape[-1], kk.shape[-1], num_segments)
  qp = q.reshape(q.shape[0], num_segments, part)  # [B, k, d]
  kp = kk.reshape(kk.shape[0], num_segments, part)  # [N, k, d]
  sq = (
    jnp.sum(qp * qp, -1)[:, None, :, None]
    + jnp.sum(kp * kp, -1)[None, :, None, :]
    - 2.0 * jnp.einsum('bid,njd->bnij', qp, kp, precision=HIGHEST)
  )  # [B, N, k, k]
  sq = jnp.maximum(sq, 0.0)
  return _greedy_min_matching(sq if squared else safe_sqrt(sq))


def shuffle_similarity_logits(
  query: jax.Array, keys: jax.Array, num_segments: int, temperature: float, normalize: bool = True
) -> jax.Array:
  """Contrastive logits from the shuffle distance: -distance / temperature.

  The paper (TCSVT 2021) defines a distance and plugs "Sim" into InfoNCE without saying how; we
  use the negative distance, so that closer (after greedy part alignment) means more similar.
  With normalize=True the whole vectors are L2-normalised first, which bounds the distance by
  2 sqrt(k) and makes the temperature comparable to cosine logits.

  Args:
    query: [B, D]. keys: [N, D]. num_segments: k. temperature: > 0.
  Returns:
    float32 [B, N] logits (feed the positive column and the queue columns to InfoNCE).
  """
  if normalize:
    query, keys = l2_normalize(query), l2_normalize(keys)
  return -pairwise_shuffle_distance(query, keys, num_segments) / temperature
