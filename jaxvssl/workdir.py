"""The run directory as a record: paths on any filesystem, one writer at a time, writable early.

Every path of a run (checkpoints, config.json, metrics.jsonl, evaluation outputs) goes through
`resolve`, an `etils.epath.Path`: a local directory, or an object store such as `gs://bucket/run`
(TensorFlow's gfile underneath), which a TPU pod needs because its hosts share no disk.
`os.path.abspath` would turn `gs://b/run` into `<cwd>/gs:/b/run`, so nothing here calls it on a
URI.

`lock(workdir)` holds an exclusive `fcntl` lock on `<workdir>/.lock` for the whole training, so a
second training on the same directory is refused with the holder named (the lock dies with its
process, so a `kill -9` never leaves a stale lock). Object stores have no such lock: there the
holder is recorded in `.lock` for people to read, and nothing is refused. `check_writable` fails
at start, not at the first checkpoint an hour later.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
from collections.abc import Iterator

from etils import epath

from jaxvssl import errors

LOCK_NAME = '.lock'


def is_local(path: str | os.PathLike) -> bool:
  """True for a path of this machine's filesystem, False for a URI such as `gs://bucket/x`."""
  return '://' not in os.fspath(path)


def resolve(path: str | os.PathLike) -> epath.Path:
  """`path` as an `epath.Path`: local paths made absolute, URIs (`gs://...`) left as they are."""
  p = epath.Path(path)
  # epath's absolute() prefixes the cwd even to a URI; a URI is absolute already.
  return p if not is_local(path) or p.is_absolute() else p.absolute()


def check_writable(workdir: str | os.PathLike) -> None:
  """Creates `workdir` if needed and proves a file can be written there."""
  root = resolve(workdir)
  probe = root / f'.write_probe.{socket.gethostname()}.{os.getpid()}'
  try:
    root.mkdir(parents=True, exist_ok=True)
    probe.write_text('ok')
    probe.unlink()
  except Exception as e:  # OSError locally; gfile raises tf.errors.* for object stores
    why = getattr(e, 'strerror', None) or errors.summary(e)
    raise errors.WorkdirError(
      f'workdir {os.fspath(workdir)!r} is not writable ({why}); fix its permissions or free '
      'space, or use another --workdir'
    ) from e


def _holder() -> str:
  started = datetime.datetime.now().isoformat(timespec='seconds')
  return f'pid {os.getpid()} on host {socket.gethostname()}, started {started}'


@contextlib.contextmanager
def lock(workdir: str | os.PathLike) -> Iterator[None]:
  """Holds the workdir's lock; raises WorkdirError naming the holder if another process has it.

  On an object store (`gs://`) the holder is only recorded: such stores have no advisory locks,
  and a marker file that refused a second writer would outlive a `kill -9` of the first.
  """
  if not is_local(workdir):
    (resolve(workdir) / LOCK_NAME).write_text(_holder())
    yield
    return
  path = os.path.join(workdir, LOCK_NAME)
  handle = open(path, 'a+')
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.seek(0)
    holder = handle.read().strip() or 'an unknown process'
    handle.close()
    raise errors.WorkdirError(
      f'workdir {os.fspath(workdir)!r} is in use by another training ({holder}); wait for it to '
      'finish, stop it, or use another --workdir'
    ) from None
  handle.seek(0)
  handle.truncate()
  handle.write(_holder())
  handle.flush()
  try:
    yield
  finally:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
