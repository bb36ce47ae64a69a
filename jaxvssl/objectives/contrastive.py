"""InfoNCE-family contrastive objectives.

Used by:
  * `info_nce`: the MoCo baseline (`moco`, `frames`), SCVRL ("SCVRL: Shuffled Contrastive Video
    Representation Learning", Dorkenwald et al., CVPRW 2022) and MLFO ("Enhancing Self-supervised
    Video Representation Learning via Multi-level Feature Optimization", Qian et al., ICCV 2021);
  * `multi_positive_info_nce`: CACL ("Cross-Architecture Self-supervised Video Representation
    Learning", Guo et al., CVPR 2022);
  * `mlfo_instance_loss`, `temporal_augmentation_loss`: MLFO (method `mlfo`).

All functions are pure and jit-able, compute in float32 whatever the input dtype, and use
`logsumexp` so that logits of any magnitude (e.g. 1e4) give finite losses and gradients.

Notation: h(u, v) = exp(cos(u, v) / tau) (MLFO, Qian et al. ICCV 2021, eq. 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvssl.objectives._utils import HIGHEST, as_f32, cosine_logits, l2_normalize


def info_nce(
  query: jax.Array, key: jax.Array, negatives: jax.Array, temperature: float
) -> jax.Array:
  """InfoNCE with one positive per query (MLFO eq. 1, SCVRL eq. 1, MoCo).

  loss_i = -log( exp(c(q_i, k_i)/tau) / (exp(c(q_i, k_i)/tau) + sum_n exp(c(q_i, n)/tau)) ),
  c = cosine similarity (inputs are L2-normalised inside).

  Args:
    query: [B, D].
    key: [B, D], the positive of each query.
    negatives: [N, D] shared by every query (a queue / memory bank), or [B, N, D] per-query
      negatives (e.g. SCVRL's shuffled copies of the positive, MLFO's feature augmentations).
    temperature: tau > 0.
  Returns:
    float32 [B] per-sample losses (reduce them as the method wants).
  """
  q = l2_normalize(query)
  k = l2_normalize(key)
  n = l2_normalize(negatives)
  pos = jnp.sum(q * k, axis=-1, keepdims=True) / temperature  # [B, 1]
  if n.ndim == 2:
    neg = jnp.matmul(q, n.T, precision=HIGHEST) / temperature  # [B, N]
  elif n.ndim == 3:
    neg = jnp.einsum('bd,bnd->bn', q, n, precision=HIGHEST) / temperature  # [B, N]
  else:
    raise ValueError(f'info_nce: negatives must be [N, D] or [B, N, D], got shape {n.shape}')
  logits = jnp.concatenate([pos, neg], axis=-1)
  # log_softmax subtracts the row max first, so the loss is exact even for logits ~1e4 (where a
  # float32 "logsumexp - pos" would lose the result in the rounding of two huge numbers).
  return -jax.nn.log_softmax(logits, axis=-1)[:, 0]


def multi_positive_info_nce(
  positive_logits: jax.Array, negative_logits: jax.Array, aggregation: str = 'sum'
) -> jax.Array:
  """InfoNCE with several positives per sample (CACL, Guo et al. CVPR 2022, eq. 3-4).

  Logits are already divided by the temperature.
  - 'sum' (the paper, eq. 4): -log( sum_p e^{pos_p} / (sum_p e^{pos_p} + sum_n e^{neg_n}) ).
  - 'independent' (the authors' code): mean_p -log( e^{pos_p} / (e^{pos_p} + sum_n e^{neg_n}) ).

  Args:
    positive_logits: [B, P].
    negative_logits: [B, N].
    aggregation: 'sum' | 'independent'.
  Returns:
    float32 [B].
  """
  pos = as_f32(positive_logits)
  neg = as_f32(negative_logits)
  # Shift by the row max (a constant for the gradient) so differences of huge logits stay exact.
  shift = jax.lax.stop_gradient(
    jnp.maximum(jnp.max(pos, -1, keepdims=True), jnp.max(neg, -1, keepdims=True))
  )
  pos, neg = pos - shift, neg - shift
  lse_neg = jax.nn.logsumexp(neg, axis=-1)  # [B]
  if aggregation == 'sum':
    lse_pos = jax.nn.logsumexp(pos, axis=-1)
    return jnp.logaddexp(lse_pos, lse_neg) - lse_pos
  if aggregation == 'independent':
    return jnp.mean(jnp.logaddexp(pos, lse_neg[:, None]) - pos, axis=-1)
  raise ValueError(
    f"multi_positive_info_nce: aggregation must be 'sum' or 'independent', got {aggregation!r}"
  )


def mlfo_instance_loss(z1: jax.Array, z2: jax.Array, temperature: float) -> jax.Array:
  """Two-view instance discrimination of MLFO, L_ins (Qian et al. ICCV 2021, eq. 2-3).

  For sample i and view a in {1, 2}:
    loss_i^a = -log( h(z_i^1, z_i^2) / (h(z_i^1, z_i^2) + sum_{j != i} [h(z_i^a, z_j^1) + h(z_i^a, z_j^2)]) )
  i.e. every other sample contributes both of its views as negatives.

  Args:
    z1, z2: [B, D] projections of the two views.
    temperature: tau > 0 (0.07 in the authors' code).
  Returns:
    float32 scalar: mean over the B samples and the 2 views (eq. 2 sums; the mean keeps the
    scale independent of the batch size).
  """
  b = z1.shape[0]
  s11 = cosine_logits(z1, z1, temperature)
  s12 = cosine_logits(z1, z2, temperature)
  s22 = cosine_logits(z2, z2, temperature)
  pos = jnp.diagonal(s12)  # [B]
  off_diag = ~jnp.eye(b, dtype=bool)
  neg_inf = jnp.float32(-jnp.inf)

  def view_loss(same_view, cross_view):
    # Negatives: other samples' two views. The i == j entries are excluded (masked to -inf).
    neg = jnp.concatenate(
      [jnp.where(off_diag, same_view, neg_inf), jnp.where(off_diag, cross_view, neg_inf)], axis=-1
    )  # [B, 2B]
    logits = jnp.concatenate([pos[:, None], neg], axis=-1)
    return -jax.nn.log_softmax(logits, axis=-1)[:, 0]

  loss1 = view_loss(s11, s12)  # anchor view 1: h(z_i^1, z_j^1), h(z_i^1, z_j^2)
  loss2 = view_loss(s22, s12.T)  # anchor view 2: h(z_i^2, z_j^2), h(z_i^2, z_j^1)
  return 0.5 * (jnp.mean(loss1) + jnp.mean(loss2))


def temporal_augmentation_loss(
  e1: jax.Array,
  e2: jax.Array,
  aug1: jax.Array,
  aug2: jax.Array,
  temperature: float,
  batch_negatives: bool = False,
) -> jax.Array:
  """MLFO L_aug (eq. 11-12): temporally augmented features are the negatives.

  loss_i^a = -log( h(e_i^1, e_i^2) / (h(e_i^1, e_i^2) + sum_k h(e_i^a, aug_k(e_i^a))) ),
  where e^a = MLP(pool(ME(f^a))) and aug_k(e^a) = MLP(pool(ME(Aug_k(f^a)))).
  With batch_negatives (the released code's `motion_contrast`) the other samples' embeddings are
  negatives too, both views as in eq. 3: + sum_{j != i} [h(e_i^a, e_j^1) + h(e_i^a, e_j^2)].

  Args:
    e1, e2: [B, D] embeddings of the two views' (un-augmented) feature maps.
    aug1, aug2: [B, A, D] embeddings of the A temporal augmentations (shuffle, reverse, ...) of
      view 1 / view 2's feature maps; each view is contrasted only with its own augmentations.
    temperature: tau > 0.
    batch_negatives: also use the other samples' e^1, e^2 as negatives.
  Returns:
    float32 scalar, mean over samples and the two views.
  """
  if not batch_negatives:
    return 0.5 * (
      jnp.mean(info_nce(e1, e2, aug1, temperature)) + jnp.mean(info_nce(e2, e1, aug2, temperature))
    )
  b = e1.shape[0]
  off_diag = ~jnp.eye(b, dtype=bool)
  s12 = cosine_logits(e1, e2, temperature)
  pos = jnp.diagonal(s12)[:, None]  # [B, 1]

  def view_loss(anchor, augs, same_view, cross_view):
    own = jnp.einsum(
      'bd,bad->ba', l2_normalize(anchor), l2_normalize(augs), precision=HIGHEST
    )  # [B, A]
    others = jnp.where(off_diag, jnp.logaddexp(same_view, cross_view), -jnp.inf)  # [B, B]
    logits = jnp.concatenate([pos, own / temperature, others], axis=-1)
    return -jax.nn.log_softmax(logits, axis=-1)[:, 0]

  loss1 = view_loss(e1, aug1, cosine_logits(e1, e1, temperature), s12)
  loss2 = view_loss(e2, aug2, cosine_logits(e2, e2, temperature), s12.T)
  return 0.5 * (jnp.mean(loss1) + jnp.mean(loss2))


def class_similarity(
  query: jax.Array, key: jax.Array, labels: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Diagnostic: mean cosine of each query to the OTHER samples' keys of its class, and of others.

  Instance discrimination treats every other video as a negative, also those of the query's
  class. A representation that groups videos by class shows `same` well above `other` (the
  "false negatives" that raise an InfoNCE loss while retrieval improves); one that contracts
  towards a single direction shows both rising together. The keys are the current batch's, so
  unlike a queue they are never stale. Not a loss: nothing here is differentiated.

  Args:
    query: [B, D]; key: [B, D] (sample i's positive is key i, excluded here); labels: int [B].
  Returns:
    (same, other): float32 scalars, the mean cosine over pairs (i, j), i != j, with equal /
    different labels; NaN when the batch has no such pair.
  """
  q = l2_normalize(query)
  k = l2_normalize(key)
  sims = jnp.matmul(q, k.T, precision=HIGHEST)  # [B, B]
  not_self = ~jnp.eye(sims.shape[0], dtype=bool)
  same = (labels[:, None] == labels[None, :]) & not_self
  other = labels[:, None] != labels[None, :]

  def masked_mean(mask):
    return jnp.sum(jnp.where(mask, sims, 0.0)) / jnp.sum(mask)

  return masked_mean(same), masked_mean(other)
