"""Orbax checkpoints: async saves, keep-N, automatic resume from the workdir.

A checkpoint holds the whole `TrainState` (params, optimizer state, and the method's state:
momentum encoders, BatchNorm statistics, queues and pointers, frozen networks), the step and the
RNG. The data position needs no extra record: the input pipeline is a pure function of
(seed, step), so restoring `step` restores it.

Paths are `etils.epath` paths (`jaxvssl.workdir.resolve`), so a workdir on an object store
(`gs://bucket/run`, shared by the hosts of a pod) works like a local one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import Mesh

from jaxvssl import errors, parallel
from jaxvssl import workdir as workdir_lib

CHECKPOINTS_DIR = 'checkpoints'


def checkpoint_dir(workdir: str | os.PathLike) -> epath.Path:
  """`<workdir>/checkpoints`: absolute for a local workdir, untouched for `gs://...`."""
  return workdir_lib.resolve(workdir) / CHECKPOINTS_DIR


def make_manager(
  workdir: str | os.PathLike, keep: int, every_steps: int, async_save: bool = True
) -> ocp.CheckpointManager:
  """An orbax manager of `<workdir>/checkpoints` (created if missing), keeping `keep` steps."""
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    save_interval_steps=every_steps,
    enable_async_checkpointing=async_save,
    create=True,
  )
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def abstract_like(tree: Any, mesh: Mesh) -> Any:
  """ShapeDtypeStructs with replicated shardings, the restore target for `tree`."""
  sharding = parallel.replicated_sharding(mesh)
  return jax.tree_util.tree_map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree
  )


def save(manager: ocp.CheckpointManager, step: int, state: Any, force: bool = False) -> bool:
  return manager.save(step, args=ocp.args.StandardSave(state), force=force)


def restore(manager: ocp.CheckpointManager, abstract_state: Any, step: int | None = None) -> Any:
  step = manager.latest_step() if step is None else step
  return manager.restore(step, args=ocp.args.StandardRestore(abstract_state))


def restore_newest_intact(
  manager: ocp.CheckpointManager,
  abstract_state: Any,
  reopen: Callable[[], ocp.CheckpointManager],
) -> tuple[Any, int | None, list[tuple[int, str]], ocp.CheckpointManager]:
  """Restores the newest checkpoint that can be read, trying older ones when one is corrupt.

  A failed restore can leave the manager's handlers in a state that fails every later restore,
  so each further attempt uses a new manager from `reopen()`.

  Returns:
    (state, step, failures, manager): the restored state and its step (None, None when none could
    be restored), `(step, why)` for every newer checkpoint that failed (newest first), and the
    manager to go on with.
  """
  failures: list[tuple[int, str]] = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      return restore(manager, abstract_state, step), step, failures, manager
    except Exception as e:  # orbax and TensorStore raise many types for one bad file
      failures.append((step, errors.summary(e)))
      manager.close()
      manager = reopen()
  return None, None, failures, manager


def set_aside(manager: ocp.CheckpointManager, step: int) -> str:
  """Renames a checkpoint that failed to restore to `corrupt-<step>-<n>` (kept, never deleted)."""
  directory = epath.Path(manager.directory)
  n = 0
  while (target := directory / f'corrupt-{step}-{n}').exists():
    n += 1
  (directory / str(step)).rename(target)
  manager.reload()
  return os.fspath(target)


def checkpoint_path(manager: ocp.CheckpointManager, step: int | None) -> str:
  """A human-readable name of a checkpoint for messages."""
  if step is None:
    return 'none (no checkpoint was saved yet)'
  return os.fspath(epath.Path(manager.directory) / str(step))
