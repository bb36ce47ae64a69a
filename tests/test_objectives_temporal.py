"""MLFO's timestamp retrieval and rate_order's shuffle distance (IEEE TCSVT 2021, Algorithm 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import objectives
from jaxvssl.objectives.temporal import _greedy_min_matching

timestamp_retrieval_loss = jax.jit(objectives.timestamp_retrieval_loss)
shuffle_distance = jax.jit(objectives.shuffle_distance, static_argnums=2)
pairwise_shuffle_distance = jax.jit(objectives.pairwise_shuffle_distance, static_argnums=2)


def _rand(seed, *shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _nll(logits, target):
  logits = np.asarray(logits, np.float64)
  m = logits.max()
  return float(np.log(np.exp(logits - m).sum()) + m - logits[target])


def _cos(u, v):
  u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
  return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def ref_timestamp(short, long, positions, tau):
  b, ts, _ = short.shape
  fwd, bwd = [], []
  for i in range(b):
    for t in range(ts):
      fwd.append(_nll([_cos(short[i, t], l) / tau for l in long[i]], positions[i, t]))
      query = long[i, positions[i, t]]
      bwd.append(_nll([_cos(query, s) / tau for s in short[i]], t))
  return 0.5 * (np.mean(fwd) + np.mean(bwd))


def ref_shuffle_distance(x, y, k):
  """Algorithm 1 of rate_order (TCSVT 2021), literally."""
  xs, ys = np.split(np.asarray(x, np.float64), k), np.split(np.asarray(y, np.float64), k)
  dmat = np.array([[np.linalg.norm(a - b) for b in ys] for a in xs])
  used_rows, used_cols, dis = set(), set(), 0.0
  while len(used_rows) < k:
    best = None
    for m in range(k):
      for n in range(k):
        if m not in used_rows and n not in used_cols and (best is None or dmat[m, n] < best[0]):
          best = (dmat[m, n], m, n)
    dis += best[0]
    used_rows.add(best[1])
    used_cols.add(best[2])
  return dis


def test_timestamp_retrieval_matches_reference():
  short, long = _rand(0, 2, 4, 8), _rand(1, 2, 8, 8)
  positions = np.array([[1, 3, 5, 7], [0, 2, 4, 6]], np.int32)
  got = timestamp_retrieval_loss(short, long, positions, 0.2)
  assert got.shape == ()
  np.testing.assert_allclose(got, ref_timestamp(short, long, positions, 0.2), rtol=1e-5)
  np.testing.assert_allclose(
    objectives.timestamp_retrieval_loss(short, long, positions, 0.2), got, rtol=1e-6
  )
  sb, lb = jnp.asarray(short, jnp.bfloat16), jnp.asarray(long, jnp.bfloat16)
  got = timestamp_retrieval_loss(sb, lb, positions, 0.2)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(
    got,
    ref_timestamp(np.asarray(sb, np.float32), np.asarray(lb, np.float32), positions, 0.2),
    rtol=1e-5,
  )


def test_timestamp_retrieval_hand_case_and_extremes():
  # Long features are one-hot timestamps, short ones copy the matched ones: at tau -> 0 the
  # retrieval is perfect (loss 0) and gradients stay finite.
  long = np.eye(6, dtype=np.float32)[None]
  positions = np.array([[1, 2, 4]], np.int32)
  short = long[:, positions[0]]
  np.testing.assert_allclose(timestamp_retrieval_loss(short, long, positions, 1e-4), 0.0, atol=1e-6)
  g = jax.grad(timestamp_retrieval_loss, argnums=(0, 1))(short + 0.1, long, positions, 1e-4)
  assert all(np.all(np.isfinite(x)) for x in g)


@pytest.mark.parametrize('k', [2, 3, 5])
def test_shuffle_distance_matches_algorithm_1(k):
  x, y = _rand(2, 6, 10 * k), _rand(3, 6, 10 * k)
  got = shuffle_distance(x, y, k)
  assert got.shape == (6,)
  np.testing.assert_allclose(got, [ref_shuffle_distance(a, b, k) for a, b in zip(x, y)], rtol=1e-5)
  # Queue form: every query against every key.
  pw = pairwise_shuffle_distance(x[:2], y, k)
  want = [[ref_shuffle_distance(a, b, k) for b in y] for a in x[:2]]
  np.testing.assert_allclose(pw, want, rtol=1e-4, atol=1e-4)


def test_shuffle_distance_hand_cases():
  x = _rand(4, 2, 12)
  # Permuting the parts of x gives distance 0: the measure is blind to segment order.
  y = np.concatenate([x[:, 8:], x[:, :4], x[:, 4:8]], axis=1)
  np.testing.assert_allclose(shuffle_distance(x, y, 3), 0.0, atol=1e-6)
  # Greedy, not optimal: [[1, 2], [2, 100]] -> 1 + 100 (the optimum 2 + 2 is not taken).
  np.testing.assert_allclose(_greedy_min_matching(jnp.array([[1.0, 2.0], [2.0, 100.0]])), 101.0)
  # 1-D parts: x = (0, 10), y = (1, 100): D = [[1, 100], [9, 90]] -> 1 + 90.
  np.testing.assert_allclose(
    shuffle_distance(np.array([0.0, 10.0]), np.array([1.0, 100.0]), 2), 91.0
  )
  # Broadcasting over leading axes, bf16 input -> float32.
  xb = jnp.asarray(x, jnp.bfloat16)
  got = shuffle_distance(xb[:, None], xb[None], 3)
  assert got.shape == (2, 2) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.diag(got), 0.0, atol=1e-6)
  with pytest.raises(ValueError, match='divisible'):
    objectives.shuffle_distance(x, x, 5)


def test_shuffle_distance_gradients_finite_at_zero_distance():
  x = _rand(5, 3, 12)
  g = jax.grad(lambda a: shuffle_distance(a, x, 3).sum())(x)
  assert np.all(np.isfinite(g))
  logits_fn = jax.jit(objectives.shuffle_similarity_logits, static_argnums=2)
  g = jax.grad(lambda a: logits_fn(a, x, 3, 0.1).sum())(x)
  assert np.all(np.isfinite(g))
  # The pairwise form computes |u|^2 + |v|^2 - 2 u.v, so at u = v it leaves a round-off residual
  # of a few float32 eps (how many depends on XLA's fusion and FMA use, i.e. on the CPU), whose
  # sqrt is ~sqrt(eps) per part: over k unit-vector parts and / temperature at most
  # 2 sqrt(k eps) / 0.1 ~ 0.012 logits (seen: 0 on one CPU, -0.0047 on another).
  bound = 2 * np.sqrt(3 * np.finfo(np.float32).eps) / 0.1
  np.testing.assert_allclose(np.diag(logits_fn(x, x, 3, 0.1)), 0.0, atol=bound)


def test_squared_shuffle_distance_sums_squared_parts_of_the_same_matching():
  """`squared=True`: the matching of Algorithm 1 (it depends only on the order of the entries),
  summing the squared part distances; for unit vectors 2 - 2 cos of the part-aligned vectors."""
  k = 3
  x, y, keys = _rand(10, 4, 12), _rand(11, 4, 12), _rand(12, 5, 12)

  def ref_squared(a, b):
    xs, ys = np.split(np.asarray(a, np.float64), k), np.split(np.asarray(b, np.float64), k)
    dmat = np.array([[np.linalg.norm(p - q) for q in ys] for p in xs])
    rows, cols, total = set(), set(), 0.0
    for _ in range(k):
      m, n = min(
        ((m, n) for m in range(k) for n in range(k) if m not in rows and n not in cols),
        key=lambda mn: dmat[mn],
      )
      total += dmat[m, n] ** 2
      rows.add(m)
      cols.add(n)
    return total

  got = objectives.shuffle_distance(x, y, k, squared=True)
  np.testing.assert_allclose(got, [ref_squared(a, b) for a, b in zip(x, y)], rtol=1e-5)
  pairwise = objectives.pairwise_shuffle_distance(x, keys, k, squared=True)
  expected = [[ref_squared(a, b) for b in keys] for a in x]
  np.testing.assert_allclose(pairwise, expected, rtol=1e-4, atol=1e-5)
  # Unit vectors whose parts are a permutation of each other: distance 0; otherwise 2 - 2 cos of
  # the aligned vectors (here the identity alignment wins: y is a small perturbation of x).
  u = x[0] / np.linalg.norm(x[0])
  moved = np.concatenate(np.split(u, k)[::-1])
  np.testing.assert_allclose(objectives.shuffle_distance(u, moved, k, squared=True), 0, atol=1e-6)
  v = u + 0.01 * y[0]
  v /= np.linalg.norm(v)
  np.testing.assert_allclose(
    objectives.shuffle_distance(u, v, k, squared=True), 2 - 2 * float(u @ v), rtol=2e-3
  )
