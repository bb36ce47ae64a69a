"""Metric writers (TensorBoard + metrics.jsonl through clu), throughput and the NaN guard."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
from clu import metric_writers
from etils import epath


class JsonlWriter(metric_writers.MetricWriter):
  """Appends one JSON object per `write_scalars` call to `<workdir>/metrics.jsonl`.

  A plain, greppable record next to TensorBoard's event files; the plots of
  `jaxvssl.evaluation.plots` read it. On resume, lines of steps > the resumed step are dropped
  first so the file never holds two records of one step (the checkpoint at the resumed step
  saw every record up to it). A run that starts from scratch (step 0) drops every old line, e.g.
  those of an attempt killed before its first checkpoint. `path` may be on an object store
  (`gs://...`, through `etils.epath`).
  """

  def __init__(self, path: str | os.PathLike, resume_step: int = 0):
    self._path = epath.Path(path)
    if self._path.exists():
      lines = self._path.read_text().splitlines(keepends=True)
      kept = [line for line in lines if line.strip() and json.loads(line)['step'] <= resume_step]
      self._path.write_text(''.join(kept))
    else:
      self._path.parent.mkdir(parents=True, exist_ok=True)
    self._file = self._path.open('a')

  def write_summaries(self, step, values, metadata=None):
    del step, values, metadata

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    record = {'step': int(step)}
    record.update({k: float(v) for k, v in scalars.items()})
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()

  def write_images(self, step, images):
    del step, images

  def write_videos(self, step, videos):
    del step, videos

  def write_audios(self, step, audios, *, sample_rate):
    del step, audios, sample_rate

  def write_texts(self, step, texts):
    del step, texts

  def write_histograms(self, step, arrays, num_buckets=None):
    del step, arrays, num_buckets

  def write_hparams(self, hparams):
    del hparams

  def flush(self):
    self._file.flush()

  def close(self):
    self._file.close()


def create_writer(
  workdir: str | os.PathLike, is_main_process: bool, resume_step: int = 0
) -> metric_writers.MetricWriter:
  """TensorBoard + logging + metrics.jsonl on process 0; logging only elsewhere."""
  if not is_main_process:
    return metric_writers.create_default_writer(os.fspath(workdir), just_logging=True)
  return metric_writers.MultiWriter(
    [
      metric_writers.create_default_writer(os.fspath(workdir), asynchronous=False),
      JsonlWriter(epath.Path(workdir) / 'metrics.jsonl', resume_step),
    ]
  )


def dead_network_warning(step: int, scalars: Mapping[str, float]) -> str | None:
  """A warning line when the gradient norm is exactly 0 (every ReLU dead), else None."""
  if scalars.get('grad_norm') != 0:
    return None
  return (
    f'[jaxvssl] warning: the gradient is exactly 0 at step {step}: the network stopped learning '
    '(a learning rate far too high kills ReLU networks); check config.optim.*'
  )


def first_non_finite(steps: list[int], losses: np.ndarray) -> int | None:
  """The first step whose loss is NaN or Inf, or None."""
  for step, loss in zip(steps, np.asarray(losses, dtype=np.float64).reshape(-1)):
    if not math.isfinite(loss):
      return step
  return None


def throughput(
  wait_seconds: float, steps: int, elapsed_seconds: float, clips_per_step: int
) -> dict[str, float]:
  """Steps/s, clips/s and the split of wall time into data wait and compute for one interval.

  `wait_seconds` is how long the host blocked on the input pipeline
  (`jaxvssl.inputs.timing.TimedIterator.pop_wait()`); compute is the rest (dispatch, the device
  time the host waits for when it reads metrics, checkpointing).
  """
  elapsed = max(elapsed_seconds, 1e-9)
  steps = max(steps, 1)
  return {
    'perf/steps_per_sec': steps / elapsed,
    'perf/clips_per_sec': steps * clips_per_step / elapsed,
    'perf/data_wait_fraction': min(max(wait_seconds / elapsed, 0.0), 1.0),
    'perf/data_wait_ms_per_step': 1000 * wait_seconds / steps,
    'perf/compute_ms_per_step': 1000 * max(elapsed - wait_seconds, 0.0) / steps,
  }


def progress_bar(total: int, initial: int, enabled: bool):
  """A tqdm bar on an interactive terminal, else None (logs carry the progress)."""
  if not enabled or not sys.stdout.isatty():
    return None
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top

  return tqdm(total=total, initial=initial, unit='step', dynamic_ncols=True)
