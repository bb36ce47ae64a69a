"""The numerical helpers of the objectives (jaxvssl.objectives._utils), l2_normalize above all."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl import objectives
from jaxvssl.objectives import _utils


def test_l2_normalize_is_public_and_keeps_its_formula():
  assert objectives.l2_normalize is _utils.l2_normalize  # methods switch to the public name
  x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
  got = objectives.l2_normalize(x)
  sq = jnp.sum(jnp.asarray(x) ** 2, axis=-1, keepdims=True)
  np.testing.assert_array_equal(got, x * jax.lax.rsqrt(jnp.maximum(sq, 1e-24)))
  np.testing.assert_allclose(got, x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-6)
  np.testing.assert_allclose(
    objectives.l2_normalize(x, axis=0), x / np.linalg.norm(x, axis=0), rtol=1e-6
  )
  assert objectives.l2_normalize(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.float32


def test_zero_vectors_stay_zero_with_finite_gradients():
  zero = jnp.zeros((2, 3))
  np.testing.assert_array_equal(objectives.l2_normalize(zero), 0.0)
  assert np.all(np.isfinite(jax.grad(lambda v: objectives.l2_normalize(v).sum())(zero)))
  np.testing.assert_array_equal(_utils.safe_norm(zero), 0.0)
  np.testing.assert_array_equal(jax.grad(lambda v: _utils.safe_norm(v).sum())(zero), 0.0)
  np.testing.assert_array_equal(jax.grad(lambda s: _utils.safe_sqrt(s).sum())(jnp.zeros(3)), 0.0)
  np.testing.assert_allclose(_utils.safe_sqrt(jnp.array([0.0, 4.0])), [0.0, 2.0])


def test_cosine_logits():
  a = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
  b = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
  want = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
    b / np.linalg.norm(b, axis=1, keepdims=True)
  ).T
  np.testing.assert_allclose(_utils.cosine_logits(a, b, 0.5), want / 0.5, rtol=1e-5, atol=1e-6)
