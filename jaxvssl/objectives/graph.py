"""MLFO graph constraint for low/mid-level features.

Used by MLFO ("Enhancing Self-supervised Video Representation Learning via Multi-level Feature
Optimization", Qian et al., ICCV 2021, eq. 6-10), method `mlfo`.

High-level projections and Sinkhorn targets define a soft target graph E over the batch
(`graph_targets`); each lower level's projections are trained to reproduce it (`graph_loss`).
Everything is computed from log h = cos / tau with logsumexp, so large logits are safe.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvssl.objectives._utils import as_f32, cosine_logits

# What the target graph keeps (MLFO Table 2 compares them): 'combined' E_ins * E_sem (eq. 9, the
# method), 'instance' E_ins alone, 'semantic' E_sem alone (uniform over the pseudo class),
# 'one_hot' the identity (the level's loss is then eq. 2-3's instance discrimination).
GRAPH_TARGETS = ('combined', 'instance', 'semantic', 'one_hot')
# 'paper': eq. 10 with the eq. 3 similarity, both views as anchors, summed over j, mean over i.
# 'code': the released code, cross-view cosines h(a_i, b_j) only, view a as anchor only, mean over
# all B^2 entries (so B times smaller than the sum over j).
GRAPH_FORMS = ('paper', 'code')


def _two_view_log_h(a: jax.Array, b: jax.Array, temperature: float):
  """log h between all pairs of the two views: (aa, ab, ba, bb), each [B, B]."""
  ab = cosine_logits(a, b, temperature)
  return cosine_logits(a, a, temperature), ab, ab.T, cosine_logits(b, b, temperature)


def graph_targets(
  z1: jax.Array,
  z2: jax.Array,
  assign1: jax.Array,
  assign2: jax.Array,
  temperature: float,
  eta: float,
  kind: str = 'combined',
) -> jax.Array:
  """Soft target graph E (MLFO eq. 6-9), stop-gradient.

  W(i, i) = h(z_i^1, z_i^2);  W(i, j) = 1/4 sum_{m,n} h(z_i^m, z_j^n) for i != j      (eq. 8)
  E_ins(i, j) = W(i, j) if W(i, j) / sum_j W(i, j) >= eta else 0                       (eq. 6)
  E_sem(i, j) = [argmax(s_i^1 + s_i^2) == argmax(s_j^1 + s_j^2)]                        (eq. 7)
  E(i, j) = E_ins E_sem / sum_k E_ins(i, k) E_sem(i, k)                                 (eq. 9)
  The diagonal is always kept (a sample is always its own neighbour, even when B is so large
  that W(i, i) / sum_j W(i, j) < eta), so every row is a valid distribution.

  Args:
    z1, z2: [B, D] high-level projections of the two views.
    assign1, assign2: [B, K] Sinkhorn targets s^1, s^2 of the two views.
    temperature: tau of h.
    eta: edge threshold on the row-normalised W (0.05 in the authors' code).
    kind: one of `GRAPH_TARGETS`; 'combined' is eq. 9, 'instance' keeps E_ins only (rows
      normalised), 'semantic' E_sem only (uniform over the samples of the same pseudo class),
      'one_hot' the identity.
  Returns:
    float32 [B, B], rows sum to 1.
  """
  z1, z2 = jax.lax.stop_gradient((as_f32(z1), as_f32(z2)))
  b = z1.shape[0]
  eye = jnp.eye(b, dtype=bool)
  s11, s12, s21, s22 = _two_view_log_h(z1, z2, temperature)
  log_mean4 = jax.nn.logsumexp(jnp.stack([s11, s12, s21, s22]), axis=0) - jnp.log(4.0)
  log_w = jnp.where(eye, s12, log_mean4)  # log W, eq. 8
  w_norm = jax.nn.softmax(log_w, axis=-1)  # W / row sum, computed stably
  keep_ins = (w_norm >= eta) | eye
  cluster = jnp.argmax(as_f32(assign1) + as_f32(assign2), axis=-1)
  keep_sem = cluster[:, None] == cluster[None, :]  # diagonal is always True
  if kind == 'combined':
    keep, weights = keep_ins & keep_sem, log_w
  elif kind == 'instance':
    keep, weights = keep_ins, log_w
  elif kind == 'semantic':
    keep, weights = keep_sem, jnp.zeros_like(log_w)
  elif kind == 'one_hot':
    keep, weights = eye, jnp.zeros_like(log_w)
  else:
    raise ValueError(f'graph_targets: kind must be one of {GRAPH_TARGETS}, got {kind!r}')
  # E = masked, row-normalised W = softmax of log W over the kept entries.
  targets = jax.nn.softmax(jnp.where(keep, weights, -jnp.inf), axis=-1)
  return jax.lax.stop_gradient(targets)


def graph_loss(
  targets: jax.Array, a: jax.Array, b: jax.Array, temperature: float, form: str = 'paper'
) -> jax.Array:
  """Cross entropy between the target graph and a level's similarity distribution (eq. 10).

  form='paper': for view x in {a, b} of sample i the similarity distribution over samples j uses the eq. 3
  form of h(z_i^x, z_j^*): h(a_i, b_i) for j == i, h(x_i, a_j) + h(x_i, b_j) for j != i, so
    loss = mean_{i, x} - sum_j E(i, j) log( h(x_i, z_j^*) / sum_j' h(x_i, z_j'^*) ).
  form='code' (the released code): loss = - 1/B^2 sum_{i, j} E(i, j) log softmax_j(h(a_i, b_j)).

  Args:
    targets: [B, B] from `graph_targets` (rows sum to 1; treated as constants).
    a, b: [B, D] projections of this level for the two views.
    temperature: tau of h.
    form: one of `GRAPH_FORMS`.
  Returns:
    float32 scalar ('paper': mean over samples and the two views).
  """
  targets = jax.lax.stop_gradient(as_f32(targets))
  n = a.shape[0]
  if form == 'code':
    log_p = jax.nn.log_softmax(cosine_logits(a, b, temperature), axis=-1)
    return -jnp.mean(targets * log_p)
  if form != 'paper':
    raise ValueError(f'graph_loss: form must be one of {GRAPH_FORMS}, got {form!r}')
  eye = jnp.eye(n, dtype=bool)
  saa, sab, sba, sbb = _two_view_log_h(a, b, temperature)
  pos = jnp.diagonal(sab)

  def view_loss(to_a, to_b):
    logits = jnp.where(eye, pos[:, None], jnp.logaddexp(to_a, to_b))  # [B, B]
    return -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)

  return 0.5 * (jnp.mean(view_loss(saa, sab)) + jnp.mean(view_loss(sba, sbb)))
