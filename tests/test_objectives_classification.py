"""Pretext classification / regression losses (jaxvssl.objectives.classification)."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from jaxvssl import objectives

softmax_cross_entropy = jax.jit(objectives.softmax_cross_entropy)


def _rand(seed, *shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _nll(logits, target):
  """-log softmax(logits)[target] in float64."""
  logits = np.asarray(logits, np.float64)
  return float(special.logsumexp(logits) - logits[target])


def test_classification_losses():
  logits = 5 * _rand(6, 4, 6)
  labels = np.array([0, 5, 2, 3])
  np.testing.assert_allclose(
    softmax_cross_entropy(logits, labels), [_nll(l, y) for l, y in zip(logits, labels)], rtol=1e-5
  )
  big = np.array([[1e4, 0.0, -1e4]], np.float32)
  np.testing.assert_allclose(softmax_cross_entropy(big, np.array([0])), [0.0], atol=1e-6)
  np.testing.assert_allclose(softmax_cross_entropy(big, np.array([1])), [1e4], rtol=1e-6)
  g = jax.grad(lambda l: softmax_cross_entropy(l, np.array([2])).sum())(big)
  assert np.all(np.isfinite(g))
  lb = jnp.asarray(logits, jnp.bfloat16)
  np.testing.assert_allclose(
    softmax_cross_entropy(lb, labels),
    [_nll(l, y) for l, y in zip(np.asarray(lb, np.float32), labels)],
    rtol=1e-5,
  )
  pred, rates = _rand(7, 3, 4), np.array([[1, 2, 8, 4]] * 3)
  np.testing.assert_allclose(
    objectives.rate_regression_loss(pred, rates), np.mean((pred - rates) ** 2), rtol=1e-6
  )
  mask = np.array([[1, 1, 0, 0]] * 3)
  np.testing.assert_allclose(
    objectives.rate_regression_loss(pred, rates, mask),
    np.mean((pred[:, :2] - rates[:, :2]) ** 2),
    rtol=1e-6,
  )
  rate_logits = _rand(8, 3, 4, 8)
  want = np.mean([_nll(rate_logits[i, j], rates[i, j] - 1) for i in range(3) for j in range(4)])
  np.testing.assert_allclose(
    objectives.rate_classification_loss(rate_logits, rates, 1), want, rtol=1e-5
  )
