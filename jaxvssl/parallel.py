"""Data parallelism with `jax.jit` over a `Mesh` with one 'data' axis.

Batches are sharded over 'data' (`P('data')`); parameters, optimizer state and queues are
replicated (`P()`). Losses are written on global arrays, so a similarity matrix over the global
batch needs no hand-written all_gather: XLA inserts the collectives.
"""

from __future__ import annotations


import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def maybe_initialize_distributed(enabled: bool) -> None:
  """`jax.distributed.initialize()` for multi-host runs (cluster settings from the environment).

  With no arguments JAX detects a Cloud TPU pod slice, SLURM or Open MPI by itself. Called once
  per process: a second call (e.g. evaluation after training in one process) does nothing.
  """
  is_initialized = getattr(jax.distributed, 'is_initialized', lambda: False)
  if enabled and not is_initialized():
    jax.distributed.initialize()


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  """A 1-d mesh over all (or the given) devices, axis name 'data'."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles per-process batches into global arrays sharded over 'data'.

  Each process passes its own `[B_local, ...]` arrays; the result has leading size
  `B_local * process_count`. Non-numeric leaves (e.g. string ids) are dropped.
  """
  sharding = data_sharding(mesh)
  out = {}
  for key, value in local_batch.items():
    value = np.asarray(value)
    if value.dtype.kind in 'biuf':
      out[key] = jax.make_array_from_process_local_data(sharding, value)
  return out
