"""Process pools for data set builds (decoding, rendering, motion scores).

Workers are spawned, not forked: the building process runs TensorFlow's thread pools, which do
not survive a fork. A spawned worker re-imports the parent's `__main__` module; a script that
builds at import time without an `if __name__ == '__main__':` guard would then start a build in
every worker, and those workers would start their own. `spawn_pool` refuses to nest: inside a
worker it returns None and the caller works in-process, so an unguarded script is slow, never a
process storm.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.pool import Pool


def spawn_pool(num_workers: int, initializer: Callable[[], None] | None = None) -> Pool | None:
  """A spawn-context pool of `num_workers`, or None (1 worker, or already inside a worker)."""
  if num_workers <= 1 or multiprocessing.parent_process() is not None:
    return None
  return multiprocessing.get_context('spawn').Pool(num_workers, initializer=initializer)
