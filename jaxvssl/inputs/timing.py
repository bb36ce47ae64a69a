"""Data-wait measurement: `TimedIterator` records how long each batch of an iterator was waited
for (metrics.py splits a step's time into data wait and compute with it)."""

from __future__ import annotations

import time
from typing import Any, Iterator


class TimedIterator:
  """Wraps an iterator and records the seconds each `next()` waited.

  The training loop wraps `tfds.as_numpy(ds)` (or any iterator) and reads
  `pop_wait()` every log interval to log the data-wait share:

      batches = TimedIterator(iter(tfds.as_numpy(ds)))
      ...
      wait_s, n = batches.pop_wait()
      share = wait_s / elapsed_s

  Attributes:
    last_wait: seconds of the latest next().
    total_wait: seconds over the iterator's life.
    num_batches: next() calls that returned a batch.
  """

  def __init__(self, iterator: Iterator[Any], clock=time.perf_counter):
    self._iterator = iter(iterator)
    self._clock = clock
    self.last_wait = 0.0
    self.total_wait = 0.0
    self.num_batches = 0
    self._window_wait = 0.0
    self._window_batches = 0

  def __iter__(self) -> 'TimedIterator':
    return self

  def __next__(self) -> Any:
    t0 = self._clock()
    batch = next(self._iterator)  # StopIteration passes through
    self.last_wait = self._clock() - t0
    self.total_wait += self.last_wait
    self._window_wait += self.last_wait
    self.num_batches += 1
    self._window_batches += 1
    return batch

  def pop_wait(self) -> tuple[float, int]:
    """(seconds waited, batches) since the previous pop_wait(); resets both."""
    out = (self._window_wait, self._window_batches)
    self._window_wait, self._window_batches = 0.0, 0
    return out
