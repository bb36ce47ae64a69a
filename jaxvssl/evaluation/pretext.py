"""Pretext diagnostics on held-out clips: the method's own training metrics, on the test split.

The shared protocol's "pretext diagnostics" (SDP accuracy, order accuracy, rate error,
contrastive loss: the columns of rate_order's Tables III/IV) are, during training, logged on the
training stream. Here they are measured on clips the network never trained on: the method's
training views (its pretext inputs and labels: shuffles, segment orders, rates, keys) built from
the test videos, fed to its loss function with the trained parameters and state, no update. The
result is the mean of every scalar metric over the batches, as `pretext/<metric>`.

Networks run as in training (BatchNorm on the batch's statistics, the queue and momentum
encoder as checkpointed), so a held-out value differs from the training log only by the videos
(and the step's dropout-like randomness, seeded). This module is pure: `metrics_fn` and the
batches come from the caller (`jaxvssl.runs.pretext_metrics_fn` builds them for a run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np
from etils import epath

PREFIX = 'pretext/'


def pretext_diagnostics(
  metrics_fn: Callable[[Any, jax.Array], Mapping[str, Any]],
  batches: Iterable[Any],
  seed: int = 0,
) -> dict[str, float]:
  """Mean of every scalar metric of `metrics_fn` over `batches`, keys `pretext/<metric>`.

  Args:
    metrics_fn: (batch, rng) -> {name: scalar}, e.g. a method's loss function's metrics.
    batches: the held-out batches (the method's training views of test videos).
    seed: batch i gets `fold_in(PRNGKey(seed), i)`.
  Returns:
    {'pretext/<name>': mean over batches} for every scalar (0-d) metric; empty without batches.
  """
  key = jax.random.PRNGKey(seed)
  totals: dict[str, float] = {}
  count = 0
  for i, batch in enumerate(batches):
    metrics = jax.device_get(metrics_fn(batch, jax.random.fold_in(key, i)))
    for name, value in metrics.items():
      if np.ndim(value) == 0:
        totals[name] = totals.get(name, 0.0) + float(value)
    count += 1
  if count == 0:
    return {}
  return {PREFIX + name: total / count for name, total in sorted(totals.items())}


def write_results(
  out_dir: str | os.PathLike, metrics: Mapping[str, float], details: Mapping[str, Any]
) -> None:
  """OUT/pretext/results.json (the `reports.read_results` schema) and results.md, raw numbers."""
  out = epath.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  payload = {'protocol': 'pretext', 'metrics': dict(metrics), 'details': dict(details)}
  (out / 'results.json').write_text(json.dumps(payload, indent=2, sort_keys=True, default=repr))
  lines = ['## pretext diagnostics on held-out clips', '', '| metric | mean |', '|---|---|']
  lines += [f'| {k[len(PREFIX) :]} | {v:.4g} |' for k, v in metrics.items()]
  (out / 'results.md').write_text('\n'.join(lines) + '\n')
