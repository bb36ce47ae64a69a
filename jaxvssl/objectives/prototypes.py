"""Prototype (clustering) objectives: log-domain Sinkhorn-Knopp and swapped prediction.

Used by MLFO's semantic loss L_sem ("Enhancing Self-supervised Video Representation Learning via
Multi-level Feature Optimization", Qian et al., ICCV 2021, eq. 4), method `mlfo`: prototype scores
z P, targets from Sinkhorn-Knopp over the current batch plus a queue, swapped prediction between two
views.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxvssl.objectives._utils import as_f32


def sinkhorn_knopp(scores: jax.Array, epsilon: float = 0.05, num_iters: int = 3) -> jax.Array:
  """Equal-partition soft assignments by Sinkhorn-Knopp, computed in the log domain.

  Solves (approximately, `num_iters` alternations) the entropic optimal transport of SwAV:
  Q proportional to exp(scores / epsilon), rescaled so that every prototype receives the same
  total mass B/K over the batch and every sample has total mass 1. The alternation is the
  SwAV one (prototype marginals first, sample marginals last, so rows sum to exactly 1), done
  with logsumexp on log Q, which never overflows (exp(1/0.05) already exceeds bf16/float16
  range and exp(score/eps) with large scores exceeds float32).

  Args:
    scores: [B, K] prototype scores (e.g. z P with L2-normalised z and prototype columns).
    epsilon: entropic regularisation (0.05 in MLFO / SwAV).
    num_iters: number of alternations (3 in MLFO / SwAV); static.
  Returns:
    float32 [B, K] assignments, each row sums to 1; no gradient flows through them.
  """
  scores = jax.lax.stop_gradient(as_f32(scores))
  b, k = scores.shape
  log_q = scores / epsilon
  log_q = log_q - jax.nn.logsumexp(log_q)  # total mass 1
  log_b = jnp.log(jnp.float32(b))
  log_k = jnp.log(jnp.float32(k))

  def alternate(_, log_q):
    # Each prototype (column) gets mass 1/K.
    log_q = log_q - jax.nn.logsumexp(log_q, axis=0, keepdims=True) - log_k
    # Each sample (row) gets mass 1/B.
    return log_q - jax.nn.logsumexp(log_q, axis=1, keepdims=True) - log_b

  # fori_loop keeps the compiled program small for any num_iters.
  log_q = jax.lax.fori_loop(0, num_iters, alternate, log_q)
  return jnp.exp(log_q + log_b)


def sinkhorn_knopp_with_queue(
  scores: jax.Array, queue: Optional[jax.Array] = None, epsilon: float = 0.05, num_iters: int = 3
) -> jax.Array:
  """Sinkhorn-Knopp over the current batch plus a queue of stored rows; returns batch rows.

  When K exceeds the batch size an equal partition of one batch is meaningless, so the rows of
  previous batches (the queue) join the transport problem; only the current rows are returned
  and used by the loss (MLFO Sec. 3.1).

  The queue rows enter the transport problem exactly as given. The released MLFO code stores the
  raw prototype scores of previous batches (what `mlfo` does). Storing `t * log(p)` instead
  (scores minus a per-row constant) is NOT equivalent at 3 iterations: a row rescaling of
  exp(scores / epsilon) changes the first column normalisation, and only the converged fixed
  point is invariant to it (at MLFO's settings the targets differ by up to 0.049 and about 1 % of
  their argmaxes change).

  Args:
    scores: [B, K] current-batch scores.
    queue: [Q, K] stored rows, or None (plain batch Sinkhorn).
    epsilon, num_iters: as in `sinkhorn_knopp`.
  Returns:
    float32 [B, K], rows sum to 1, stop-gradient.
  """
  b = scores.shape[0]
  if queue is None:
    return sinkhorn_knopp(scores, epsilon, num_iters)
  if queue.ndim != 2 or queue.shape[1] != scores.shape[1]:
    raise ValueError(
      f'sinkhorn_knopp_with_queue: queue must be [Q, {scores.shape[1]}], got {queue.shape}'
    )
  joint = jnp.concatenate([as_f32(scores), as_f32(queue)], axis=0)
  # Rows of the joint problem sum to 1 after the last (row) normalisation, so slicing keeps that.
  return sinkhorn_knopp(joint, epsilon, num_iters)[:b]


def swapped_prediction_loss(
  scores1: jax.Array,
  scores2: jax.Array,
  queue1: Optional[jax.Array] = None,
  queue2: Optional[jax.Array] = None,
  *,
  temperature: float = 0.1,
  epsilon: float = 0.05,
  num_iters: int = 3,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  """MLFO semantic loss L_sem (eq. 4): predict one view's Sinkhorn target from the other.

  s^a = SinkhornKnopp([scores^a; queue^a])[:B] (stop-gradient), p^a = softmax(scores^a / t),
  loss = mean_i  -1/2 * sum_k ( s_i^1(k) log p_i^2(k) + s_i^2(k) log p_i^1(k) ).

  Args:
    scores1, scores2: [B, K] prototype scores z^a P of the two views.
    queue1, queue2: [Q, K] stored rows for each view's Sinkhorn problem, or None.
    temperature: softmax temperature of p (0.1).
    epsilon, num_iters: Sinkhorn parameters (0.05, 3).
  Returns:
    (loss float32 scalar, (targets1 [B, K], targets2 [B, K])); the targets are returned because
    MLFO's graph constraint (`graph_targets`) uses them.
  """
  t1 = sinkhorn_knopp_with_queue(scores1, queue1, epsilon, num_iters)
  t2 = sinkhorn_knopp_with_queue(scores2, queue2, epsilon, num_iters)
  log_p1 = jax.nn.log_softmax(as_f32(scores1) / temperature, axis=-1)
  log_p2 = jax.nn.log_softmax(as_f32(scores2) / temperature, axis=-1)
  loss = -0.5 * jnp.mean(jnp.sum(t1 * log_p2, axis=-1) + jnp.sum(t2 * log_p1, axis=-1))
  return loss, (t1, t2)
