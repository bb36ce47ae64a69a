"""MLFO graph targets / graph loss vs loop-based NumPy references of MLFO (ICCV 2021) eq. 6-10."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl import objectives

graph_targets = jax.jit(objectives.graph_targets)
graph_loss = jax.jit(objectives.graph_loss)


def _cos(u, v):
  u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
  return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def ref_targets(z1, z2, s1, s2, tau, eta):
  b = z1.shape[0]
  h = lambda u, v: np.exp(_cos(u, v) / tau)
  w = np.zeros((b, b))
  for i in range(b):
    for j in range(b):
      if i == j:
        w[i, j] = h(z1[i], z2[i])
      else:
        w[i, j] = np.mean([h(zm[i], zn[j]) for zm in (z1, z2) for zn in (z1, z2)])
  e = np.zeros((b, b))
  cl = np.argmax(s1 + s2, axis=1)
  for i in range(b):
    for j in range(b):
      e_ins = w[i, j] if (w[i, j] / w[i].sum() >= eta or i == j) else 0.0
      e[i, j] = e_ins * float(cl[i] == cl[j])
    e[i] /= e[i].sum()
  return e


def ref_graph_loss(e, a, b, tau):
  n = a.shape[0]
  h = lambda u, v: np.exp(_cos(u, v) / tau)
  total = 0.0
  for i in range(n):
    for x in (a, b):
      hs = [h(a[i], b[i]) if j == i else h(x[i], a[j]) + h(x[i], b[j]) for j in range(n)]
      total += -sum(e[i, j] * np.log(hs[j] / sum(hs)) for j in range(n))
  return total / (2 * n)


def _inputs(seed, b=6, d=8, k=3):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(b, d)).astype(np.float32)
  z2 = (z1 + 0.5 * rng.normal(size=(b, d))).astype(np.float32)
  s1 = rng.dirichlet(np.ones(k), size=b).astype(np.float32)
  s2 = rng.dirichlet(np.ones(k), size=b).astype(np.float32)
  return z1, z2, s1, s2


def test_graph_targets_match_reference():
  z1, z2, s1, s2 = _inputs(0)
  got = graph_targets(z1, z2, s1, s2, 0.5, 0.15)
  want = ref_targets(z1, z2, s1, s2, 0.5, 0.15)
  assert got.shape == (6, 6)
  assert 0 < np.sum(want == 0) < 30  # the threshold and the clusters really cut edges
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.sum(got, 1), 1.0, rtol=1e-6)


def test_graph_targets_keep_diagonal_and_stop_gradient():
  z1, z2, s1, s2 = _inputs(1)
  # eta = 1 removes every off-diagonal edge; the diagonal stays, so E = identity.
  np.testing.assert_allclose(graph_targets(z1, z2, s1, s2, 0.5, 1.0), np.eye(6), atol=1e-7)
  g = jax.grad(lambda a: jnp.sum(graph_targets(a, z2, s1, s2, 0.5, 0.05) * jnp.arange(6.0)))(z1)
  np.testing.assert_array_equal(g, 0.0)


def test_graph_targets_extreme_and_bf16():
  z1, z2, s1, s2 = _inputs(2)
  got = graph_targets(z1, z2, s1, s2, 1e-4, 0.05)
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(np.sum(got, 1), 1.0, rtol=1e-6)
  zb1, zb2 = jnp.asarray(z1, jnp.bfloat16), jnp.asarray(z2, jnp.bfloat16)
  got = graph_targets(zb1, zb2, s1, s2, 0.5, 0.15)
  assert got.dtype == jnp.float32
  want = ref_targets(np.asarray(zb1, np.float32), np.asarray(zb2, np.float32), s1, s2, 0.5, 0.15)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_graph_loss_matches_reference():
  z1, z2, s1, s2 = _inputs(3)
  e = ref_targets(z1, z2, s1, s2, 0.5, 0.15).astype(np.float32)
  a, b = _inputs(4)[:2]
  np.testing.assert_allclose(graph_loss(e, a, b, 0.3), ref_graph_loss(e, a, b, 0.3), rtol=1e-5)
  np.testing.assert_allclose(
    objectives.graph_loss(e, a, b, 0.3), graph_loss(e, a, b, 0.3), rtol=1e-6
  )
  ab, bb = jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16)
  got = graph_loss(e, ab, bb, 0.3)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(
    got, ref_graph_loss(e, np.asarray(ab, np.float32), np.asarray(bb, np.float32), 0.3), rtol=1e-5
  )


def test_graph_loss_extreme_logits_finite_grads():
  z1, z2, s1, s2 = _inputs(5)
  e = graph_targets(z1, z2, s1, s2, 0.5, 0.05)
  loss, grads = jax.value_and_grad(graph_loss, argnums=(1, 2))(e, z1, z2, 1e-4)
  assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)


def ref_targets_kind(z1, z2, s1, s2, tau, eta, kind):
  """Table 2's target graphs: E_ins alone, E_sem alone (uniform in the class), the identity."""
  b = z1.shape[0]
  if kind == 'one_hot':
    return np.eye(b)
  h = lambda u, v: np.exp(_cos(u, v) / tau)
  cl = np.argmax(s1 + s2, axis=1)
  e = np.zeros((b, b))
  for i in range(b):
    for j in range(b):
      if kind == 'semantic':
        e[i, j] = float(cl[i] == cl[j])
        continue
      w_ij = (
        h(z1[i], z2[i]) if i == j else np.mean([h(m[i], n[j]) for m in (z1, z2) for n in (z1, z2)])
      )
      row = [
        h(z1[i], z2[i]) if i == k else np.mean([h(m[i], n[k]) for m in (z1, z2) for n in (z1, z2)])
        for k in range(b)
      ]
      e[i, j] = w_ij if (w_ij / sum(row) >= eta or i == j) else 0.0
    e[i] /= e[i].sum()
  return e


def test_graph_target_kinds_match_reference():
  z1, z2, s1, s2 = _inputs(6)
  for kind in ('instance', 'semantic', 'one_hot'):
    got = objectives.graph_targets(z1, z2, s1, s2, 0.5, 0.15, kind=kind)
    want = ref_targets_kind(z1, z2, s1, s2, 0.5, 0.15, kind)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=kind)
  np.testing.assert_allclose(
    objectives.graph_targets(z1, z2, s1, s2, 0.5, 0.15, kind='combined'),
    ref_targets(z1, z2, s1, s2, 0.5, 0.15),
    rtol=1e-5,
    atol=1e-7,
  )


def test_one_hot_graph_loss_is_the_instance_loss():
  """Table 2's 'one-hot' row: with E = I the graph loss is eq. 2-3's instance discrimination."""
  a, b = _inputs(7)[:2]
  np.testing.assert_allclose(
    objectives.graph_loss(np.eye(6, dtype=np.float32), a, b, 0.3),
    objectives.mlfo_instance_loss(a, b, 0.3),
    rtol=1e-6,
  )


def test_code_form_graph_loss_matches_reference():
  """The released code: cross-view cosines only, view a anchors, mean over the B^2 entries."""
  z1, z2, s1, s2 = _inputs(8)
  e = ref_targets(z1, z2, s1, s2, 0.5, 0.15)
  a, b = _inputs(9)[:2]
  n = a.shape[0]
  total = 0.0
  for i in range(n):
    logits = np.array([_cos(a[i], b[j]) / 0.3 for j in range(n)])
    log_p = logits - np.log(np.exp(logits).sum())
    total += -np.sum(e[i] * log_p)
  got = objectives.graph_loss(e.astype(np.float32), a, b, 0.3, form='code')
  np.testing.assert_allclose(got, total / n**2, rtol=1e-5)
