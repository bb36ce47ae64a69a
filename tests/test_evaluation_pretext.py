"""Held-out pretext diagnostics (jaxvssl/evaluation/pretext.py) against a NumPy reference."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl.evaluation import pretext


def test_mean_of_every_scalar_metric_over_the_batches():
  batches = [np.full((4,), v, np.float32) for v in (1.0, 2.0, 6.0)]
  seen_rngs = []

  def metrics_fn(batch, rng):
    seen_rngs.append(np.asarray(rng))
    x = jnp.asarray(batch)
    return {'loss': jnp.sum(x), 'accuracy': jnp.mean(x > 1.5), 'per_sample': x}

  out = pretext.pretext_diagnostics(metrics_fn, iter(batches), seed=3)
  # NumPy reference: the mean over batches of each scalar; non-scalar metrics are left out.
  assert out == {
    'pretext/accuracy': np.mean([0.0, 1.0, 1.0]),
    'pretext/loss': np.mean([4.0, 8.0, 24.0]),
  }
  # Each batch its own key, fold_in(PRNGKey(seed), i): reproducible, never reused.
  expected = [np.asarray(jax.random.fold_in(jax.random.PRNGKey(3), i)) for i in range(3)]
  np.testing.assert_array_equal(np.stack(seen_rngs), np.stack(expected))
  assert pretext.pretext_diagnostics(metrics_fn, iter([])) == {}


def test_results_files(tmp_path):
  metrics = {'pretext/order_accuracy': 0.25, 'pretext/rate_error': 1.5}
  pretext.write_results(tmp_path / 'pretext', metrics, {'split': 'test', 'batches': 10})
  payload = json.loads((tmp_path / 'pretext' / 'results.json').read_text())
  assert payload['metrics'] == metrics and payload['details']['batches'] == 10
  md = (tmp_path / 'pretext' / 'results.md').read_text()
  assert '| order_accuracy | 0.25 |' in md and '| rate_error | 1.5 |' in md  # raw, not percent
