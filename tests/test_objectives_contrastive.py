"""InfoNCE-family objectives vs hand-written NumPy references (float64, loops)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import objectives

# Tests call jitted functions: one compilation per function instead of one per eager primitive.
# (test_jit_and_bf16 checks eager == jit.)
info_nce = jax.jit(objectives.info_nce)
multi_positive_info_nce = jax.jit(objectives.multi_positive_info_nce, static_argnums=2)
mlfo_instance_loss = jax.jit(objectives.mlfo_instance_loss)
temporal_augmentation_loss = jax.jit(objectives.temporal_augmentation_loss)


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _cos(u, v):
  return float(np.dot(_unit(u), _unit(v)))


def _nll_first(logits):
  """-log softmax(logits)[0] with max subtraction (float64)."""
  logits = np.asarray(logits, np.float64)
  m = logits.max()
  return float(np.log(np.sum(np.exp(logits - m))) + m - logits[0])


def ref_info_nce(q, k, negs, tau):
  out = []
  for i in range(q.shape[0]):
    n_i = negs if negs.ndim == 2 else negs[i]
    logits = [_cos(q[i], k[i]) / tau] + [_cos(q[i], n) / tau for n in n_i]
    out.append(_nll_first(logits))
  return np.array(out)


def ref_multi_positive(pos, neg, aggregation):
  out = []
  for i in range(pos.shape[0]):
    if aggregation == 'sum':
      p = np.exp(pos[i].astype(np.float64))
      out.append(-np.log(p.sum() / (p.sum() + np.exp(neg[i].astype(np.float64)).sum())))
    else:
      out.append(np.mean([_nll_first([pp] + list(neg[i])) for pp in pos[i]]))
  return np.array(out)


def ref_mlfo_instance(z1, z2, tau):
  b = z1.shape[0]
  h = lambda u, v: np.exp(_cos(u, v) / tau)
  total = 0.0
  for i in range(b):
    for za in (z1, z2):
      pos = h(z1[i], z2[i])
      den = pos + sum(h(za[i], z1[j]) + h(za[i], z2[j]) for j in range(b) if j != i)
      total += -np.log(pos / den)
  return total / (2 * b)


def _rand(seed, *shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize('neg_shape', [(7, 8), (4, 5, 8)])
def test_info_nce_matches_reference(neg_shape):
  q, k, n = _rand(0, 4, 8), _rand(1, 4, 8), _rand(2, *neg_shape)
  got = info_nce(q, k, n, 0.2)
  assert got.shape == (4,) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, ref_info_nce(q, k, n, 0.2), rtol=1e-5, atol=1e-5)


def test_info_nce_hand_case_and_extreme_logits():
  q = np.array([[1.0, 0.0]], np.float32)
  n = np.array([[0.0, 1.0]], np.float32)
  # cos(q,k)=1, cos(q,n)=0, tau=1: -log(e / (e + 1)).
  np.testing.assert_allclose(info_nce(q, 3 * q, n, 1.0), [np.log1p(np.exp(-1.0))], rtol=1e-6)
  # tau=1e-4 -> logits 1e4: positive dominates (loss ~ 0); a negative equal to q gives log 2.
  np.testing.assert_allclose(info_nce(q, q, n, 1e-4), [0.0], atol=1e-6)
  np.testing.assert_allclose(info_nce(q, q, q, 1e-4), [np.log(2.0)], rtol=1e-6)
  g = jax.grad(lambda x: info_nce(x, q, np.concatenate([q, n]), 1e-4).sum())(q + 0.1)
  assert np.all(np.isfinite(g))


def test_info_nce_zero_vector_has_finite_grad():
  q = np.zeros((2, 4), np.float32)
  g = jax.grad(lambda x: info_nce(x, _rand(1, 2, 4), _rand(2, 3, 4), 0.1).sum())(q)
  assert np.all(np.isfinite(g))


@pytest.mark.parametrize('aggregation', ['sum', 'independent'])
def test_multi_positive_matches_reference(aggregation):
  pos, neg = 3 * _rand(3, 5, 4), 3 * _rand(4, 5, 9)
  got = multi_positive_info_nce(pos, neg, aggregation)
  np.testing.assert_allclose(got, ref_multi_positive(pos, neg, aggregation), rtol=1e-5, atol=1e-6)


def test_multi_positive_hand_cases_and_extremes():
  pos = np.zeros((1, 2), np.float32)
  neg = np.zeros((1, 1), np.float32)
  np.testing.assert_allclose(multi_positive_info_nce(pos, neg, 'sum'), [np.log(1.5)], rtol=1e-6)
  np.testing.assert_allclose(
    multi_positive_info_nce(pos, neg, 'independent'), [np.log(2.0)], rtol=1e-6
  )
  big_pos = np.array([[1e4, -1e4]], np.float32)
  big_neg = np.array([[1e4, -1e4]], np.float32)
  for agg, want in (('sum', np.log(2.0)), ('independent', 0.5 * (np.log(2.0) + 2e4))):
    got = multi_positive_info_nce(big_pos, big_neg, agg)
    np.testing.assert_allclose(got, [want], rtol=1e-5)
    g = jax.grad(lambda p, agg=agg: multi_positive_info_nce(p, big_neg, agg).sum())(big_pos)
    assert np.all(np.isfinite(g))
  with pytest.raises(ValueError, match='aggregation'):
    multi_positive_info_nce(pos, neg, 'mean')


def test_mlfo_instance_loss_matches_reference():
  z1, z2 = _rand(5, 6, 8), _rand(6, 6, 8)
  got = mlfo_instance_loss(z1, z2, 0.3)
  assert got.shape == ()
  np.testing.assert_allclose(got, ref_mlfo_instance(z1, z2, 0.3), rtol=1e-5)


def test_mlfo_instance_loss_extreme_temperature_and_grads():
  z1, z2 = _rand(7, 4, 8), _rand(8, 4, 8)
  loss, grads = jax.value_and_grad(mlfo_instance_loss, argnums=(0, 1))(z1, z2, 1e-4)
  assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)


def test_temporal_augmentation_loss_matches_reference():
  e1, e2, a1, a2 = _rand(9, 3, 8), _rand(10, 3, 8), _rand(11, 3, 2, 8), _rand(12, 3, 2, 8)
  want = 0.5 * (ref_info_nce(e1, e2, a1, 0.1).mean() + ref_info_nce(e2, e1, a2, 0.1).mean())
  np.testing.assert_allclose(temporal_augmentation_loss(e1, e2, a1, a2, 0.1), want, rtol=1e-5)


def test_jit_and_bf16():
  q, k, n = _rand(13, 4, 16), _rand(14, 4, 16), _rand(15, 6, 16)
  np.testing.assert_allclose(
    info_nce(q, k, n, 0.1), objectives.info_nce(q, k, n, 0.1), rtol=1e-6, atol=1e-6
  )
  np.testing.assert_allclose(
    mlfo_instance_loss(q, k, 0.1), objectives.mlfo_instance_loss(q, k, 0.1), rtol=1e-6
  )
  # bf16 inputs: results are float32 and equal the float64 reference on the rounded inputs.
  qb, kb, nb = (jnp.asarray(x, jnp.bfloat16) for x in (q, k, n))
  rounded = [np.asarray(x, np.float32) for x in (qb, kb, nb)]
  got = info_nce(qb, kb, nb, 0.1)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, ref_info_nce(*rounded, 0.1), rtol=1e-5, atol=1e-5)
  got = mlfo_instance_loss(qb, kb, 0.1)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, ref_mlfo_instance(rounded[0], rounded[1], 0.1), rtol=1e-5)
  pos = jnp.asarray(3 * _rand(16, 4, 3), jnp.bfloat16)
  neg = jnp.asarray(3 * _rand(17, 4, 5), jnp.bfloat16)
  got = multi_positive_info_nce(pos, neg, 'sum')
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(
    got,
    ref_multi_positive(np.asarray(pos, np.float32), np.asarray(neg, np.float32), 'sum'),
    rtol=1e-5,
    atol=1e-6,
  )


def _class_similarity_reference(q, k, labels):
  q = q / np.linalg.norm(q, axis=-1, keepdims=True)
  k = k / np.linalg.norm(k, axis=-1, keepdims=True)
  same, other = [], []
  for i in range(len(q)):
    for j in range(len(k)):
      if i == j:
        continue
      (same if labels[i] == labels[j] else other).append(float(q[i] @ k[j]))
  return np.mean(same), np.mean(other)


def test_class_similarity_matches_reference():
  rng = np.random.default_rng(0)
  q, k = rng.standard_normal((2, 12, 5)).astype(np.float32)
  labels = rng.integers(0, 3, 12)
  same, other = objectives.class_similarity(q, k, labels)
  ref_same, ref_other = _class_similarity_reference(q, k, labels)
  np.testing.assert_allclose([same, other], [ref_same, ref_other], rtol=1e-5, atol=1e-6)


def test_class_similarity_excludes_the_positive_and_reports_missing_pairs():
  # Every key equals its query: the positive (cos 1) must not count as a same-class pair.
  q = np.eye(4, dtype=np.float32)
  same, other = objectives.class_similarity(q, q, np.array([0, 0, 1, 1]))
  assert float(same) == 0.0 and float(other) == 0.0
  same, _ = objectives.class_similarity(q, q, np.array([0, 1, 2, 3]))
  assert np.isnan(same)  # no two samples share a class


def test_temporal_augmentation_loss_with_batch_negatives_matches_reference():
  """The released code's motion_contrast: the other samples' two views are negatives too."""
  e1, e2, a1, a2 = _rand(18, 4, 8), _rand(19, 4, 8), _rand(20, 4, 1, 8), _rand(21, 4, 1, 8)
  tau = 0.2
  total = 0.0
  for e, augs in ((e1, a1), (e2, a2)):
    for i in range(4):
      logits = [_cos(e1[i], e2[i]) / tau] + [_cos(e[i], x) / tau for x in augs[i]]
      others = [np.exp(_cos(e[i], v[j]) / tau) for j in range(4) if j != i for v in (e1, e2)]
      m = max(logits)
      den = np.exp(np.array(logits) - m).sum() + np.sum(others) * np.exp(-m)
      total += -(logits[0] - m - np.log(den))
  got = objectives.temporal_augmentation_loss(e1, e2, a1, a2, tau, batch_negatives=True)
  np.testing.assert_allclose(got, total / 8, rtol=1e-5)
