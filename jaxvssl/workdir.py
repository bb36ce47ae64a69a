"""The run directory as a record: one writer at a time, writable before work starts.

`lock(workdir)` holds an exclusive `fcntl` lock on `<workdir>/.lock` for the whole training, so a
second training on the same directory is refused with the holder named (the lock dies with its
process, so a `kill -9` never leaves a stale lock). `check_writable` fails at start, not at the
first checkpoint an hour later.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
from collections.abc import Iterator

from jaxvssl import errors

LOCK_NAME = '.lock'


def check_writable(workdir: str) -> None:
  """Creates `workdir` if needed and proves a file can be written there."""
  probe = os.path.join(workdir, f'.write_probe.{os.getpid()}')
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise errors.WorkdirError(
      f'workdir {workdir!r} is not writable ({e.strerror or e}); fix its permissions or free '
      'space, or use another --workdir'
    ) from e


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds the workdir's lock; raises WorkdirError naming the holder if another process has it."""
  path = os.path.join(workdir, LOCK_NAME)
  handle = open(path, 'a+')
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.seek(0)
    holder = handle.read().strip() or 'an unknown process'
    handle.close()
    raise errors.WorkdirError(
      f'workdir {workdir!r} is in use by another training ({holder}); wait for it to finish, '
      'stop it, or use another --workdir'
    ) from None
  started = datetime.datetime.now().isoformat(timespec='seconds')
  handle.seek(0)
  handle.truncate()
  handle.write(f'pid {os.getpid()} on host {socket.gethostname()}, started {started}')
  handle.flush()
  try:
    yield
  finally:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
