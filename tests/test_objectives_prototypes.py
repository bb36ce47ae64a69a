"""Sinkhorn-Knopp and swapped prediction vs NumPy references (SwAV's exp-domain alternation)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl import objectives

sinkhorn_knopp = jax.jit(objectives.sinkhorn_knopp, static_argnums=(1, 2))
sinkhorn_knopp_with_queue = jax.jit(objectives.sinkhorn_knopp_with_queue, static_argnums=(2, 3))
swapped_prediction_loss = jax.jit(
  objectives.swapped_prediction_loss, static_argnames=('temperature', 'epsilon', 'num_iters')
)


def ref_sinkhorn(scores, eps, iters):
  """SwAV's distributed_sinkhorn on one device, float64, exp domain (fine for moderate scores)."""
  q = np.exp(np.asarray(scores, np.float64) / eps).T  # [K, B]
  k, b = q.shape
  q /= q.sum()
  for _ in range(iters):
    q /= q.sum(axis=1, keepdims=True)
    q /= k
    q /= q.sum(axis=0, keepdims=True)
    q /= b
  return (q * b).T


def ref_log_softmax(x):
  x = np.asarray(x, np.float64)
  m = x.max(-1, keepdims=True)
  return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _scores(seed, b, k):
  # Cosine-like scores in [-1, 1], as z P with unit z and unit prototype columns.
  return np.tanh(np.random.default_rng(seed).normal(size=(b, k))).astype(np.float32)


def test_sinkhorn_matches_reference_and_marginals():
  s = _scores(0, 8, 5)
  got = sinkhorn_knopp(s, 0.05, 3)
  assert got.shape == (8, 5) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, ref_sinkhorn(s, 0.05, 3), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(np.sum(got, 1), 1.0, rtol=1e-5)
  # Converged: every prototype receives B / K of the mass.
  conv = sinkhorn_knopp(s, 0.5, 200)
  np.testing.assert_allclose(np.sum(conv, 0), 8 / 5, rtol=1e-3)


def test_sinkhorn_hand_case():
  # Identical rows carry no preference: the equal-partition solution is uniform.
  np.testing.assert_allclose(sinkhorn_knopp(np.ones((4, 2), np.float32), 0.05, 3), 0.5, rtol=1e-6)


def test_sinkhorn_extreme_scores_bf16_and_no_grad():
  s = 1e4 * _scores(1, 6, 4)
  got = sinkhorn_knopp(s, 0.05, 3)
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(np.sum(got, 1), 1.0, rtol=1e-5)
  sb = jnp.asarray(_scores(2, 6, 4), jnp.bfloat16)
  got = sinkhorn_knopp(sb, 0.05, 3)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(
    got, ref_sinkhorn(np.asarray(sb, np.float32), 0.05, 3), rtol=1e-4, atol=1e-6
  )
  g = jax.grad(lambda x: jnp.sum(sinkhorn_knopp(x, 0.05, 3) * jnp.arange(4.0)))(_scores(3, 6, 4))
  np.testing.assert_array_equal(g, 0.0)  # targets are stop-gradient
  np.testing.assert_allclose(
    objectives.sinkhorn_knopp(s, 0.05, 3), sinkhorn_knopp(s, 0.05, 3), rtol=1e-5, atol=1e-7
  )


def test_sinkhorn_with_queue_uses_queue_but_returns_batch_rows():
  s, q = _scores(4, 4, 6), _scores(5, 10, 6)
  got = sinkhorn_knopp_with_queue(s, q, 0.05, 3)
  assert got.shape == (4, 6)
  np.testing.assert_allclose(
    got, ref_sinkhorn(np.concatenate([s, q]), 0.05, 3)[:4], rtol=1e-4, atol=1e-6
  )
  np.testing.assert_allclose(
    sinkhorn_knopp_with_queue(s, None, 0.05, 3), ref_sinkhorn(s, 0.05, 3), rtol=1e-4, atol=1e-6
  )


def test_queue_of_log_probabilities_has_the_same_fixed_point_but_not_at_3_iterations():
  # Storing p = softmax(scores / t) and passing t * log p (a per-row shift of the scores) gives
  # the same converged assignment, but not after MLFO's 3 iterations: the queue must store what
  # the released code stores, the raw scores (sinkhorn_knopp_with_queue's docstring).
  s, q = _scores(6, 4, 5), _scores(7, 12, 5)
  t = 0.1
  q_logp = (t * ref_log_softmax(q / t)).astype(np.float32)
  a = sinkhorn_knopp_with_queue(s, q, 0.5, 300)
  b = sinkhorn_knopp_with_queue(s, q_logp, 0.5, 300)
  np.testing.assert_allclose(a, b, atol=1e-4)
  a3 = sinkhorn_knopp_with_queue(s, q, 0.05, 3)
  b3 = sinkhorn_knopp_with_queue(s, q_logp, 0.05, 3)
  assert np.max(np.abs(np.asarray(a3) - np.asarray(b3))) > 1e-3


def test_swapped_prediction_loss_matches_reference():
  s1, s2, q1, q2 = _scores(8, 4, 6), _scores(9, 4, 6), _scores(10, 8, 6), _scores(11, 8, 6)
  loss, (t1, t2) = swapped_prediction_loss(
    s1, s2, q1, q2, temperature=0.1, epsilon=0.05, num_iters=3
  )
  r1 = ref_sinkhorn(np.concatenate([s1, q1]), 0.05, 3)[:4]
  r2 = ref_sinkhorn(np.concatenate([s2, q2]), 0.05, 3)[:4]
  lp1, lp2 = ref_log_softmax(s1 / 0.1), ref_log_softmax(s2 / 0.1)
  want = np.mean([-0.5 * (np.dot(r1[i], lp2[i]) + np.dot(r2[i], lp1[i])) for i in range(4)])
  np.testing.assert_allclose(loss, want, rtol=1e-4)
  np.testing.assert_allclose(t1, r1, rtol=1e-4, atol=1e-6)
  grads = jax.grad(lambda a, b: swapped_prediction_loss(a, b, q1, q2)[0], argnums=(0, 1))(
    1e4 * s1, 1e4 * s2
  )
  assert all(np.all(np.isfinite(g)) for g in grads)
