"""The pretraining loop: one readable function, `jax.jit` over a data-parallel mesh.

Sections: set-up -> method and data -> state (init or resume) -> compiled step -> loop (log,
NaN guard, checkpoint, monitor) -> final checkpoint. Every method runs through this loop; a method
only says which views it needs and how its loss is combined (`jaxvssl/methods/base.py`).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import logging

from jaxvssl import checkpointing, errors, optim, parallel, runs
from jaxvssl import config as config_lib
from jaxvssl import metrics as metrics_lib
from jaxvssl import methods as methods_lib
from jaxvssl import state as state_lib
from jaxvssl.evaluation import monitor as monitor_lib
from jaxvssl.inputs import pipeline
from jaxvssl.state import TrainState


def make_train_step(
  method: methods_lib.Method, tx: optax.GradientTransformation, schedule: optax.Schedule
) -> Callable:
  """The pure step: (TrainState, batch) -> (TrainState, metrics)."""

  def train_step(ts: TrainState, batch: dict[str, jax.Array]):
    # Folding the step into the run's key makes every step's randomness a pure function of
    # (seed, step), which is what makes an interrupted-and-resumed run equal an uninterrupted one.
    rng = jax.random.fold_in(ts.rng, ts.step)

    def loss_fn(params):
      return method.loss_fn(params, ts.state, batch, rng, ts.step)

    (loss, (step_metrics, state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(ts.params)
    updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
    params = optax.apply_updates(ts.params, updates)
    state = method.after_update(params, state, ts.step)
    step_metrics = dict(
      step_metrics, loss=loss, learning_rate=schedule(ts.step), grad_norm=optax.global_norm(grads)
    )
    new_ts = ts.replace(step=ts.step + 1, params=params, opt_state=opt_state, state=state)
    return new_ts, step_metrics

  return train_step


def make_batches(
  config: ml_collections.ConfigDict, method: methods_lib.Method, start_step: int, source: Any = None
) -> Iterator[dict[str, np.ndarray]]:
  """This process's share of the training stream, positioned at `start_step`."""
  ds = method.train_dataset(
    global_batch_size=config.batch_size,
    seed=config.seed,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    start_step=start_step,
    source=source,
  )
  return iter(ds.as_numpy_iterator())


def _restore_or_explain(manager, abstract_state, config, workdir: str):
  """Restores the latest checkpoint; on a structure mismatch names the config keys that changed."""
  try:
    return checkpointing.restore(manager, abstract_state)
  except ValueError as e:
    path = os.path.join(workdir, 'config.json')
    if os.path.exists(path):
      with open(path) as f:
        changed = config_lib.config_diff(json.load(f), json.loads(config.to_json_best_effort()))
    else:
      changed = [f'({path} is missing)']
    step = manager.latest_step()
    raise errors.ResumeMismatchError(
      f'{workdir} holds a checkpoint (step {step}, '
      f'{checkpointing.checkpoint_path(manager, step)}) whose train state does not match this '
      f'config, so it cannot be resumed. Config keys that differ from {path}: '
      f'{"; ".join(changed) or "none"}. Use a new --workdir, or the config the run was started '
      f'with. (orbax: {str(e).splitlines()[0]})'
    ) from e


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  batches_fn: Callable[[int], Iterator[dict[str, np.ndarray]]] | None = None,
  source: Any = None,
  devices: list[jax.Device] | None = None,
  stop_after_steps: int | None = None,
) -> TrainState:
  """Pretrains `config.method`, resuming from `workdir` if it holds a checkpoint.

  Args:
    config: a validated config (`jaxvssl.config.load_config`).
    workdir: checkpoints, config.json, metrics.jsonl and TensorBoard events go here.
    batches_fn: `start_step -> iterator of local batches`, used instead of the configured data
      set (tests and custom data).
    source: a tf.data source of examples to use instead of the TFDS data set (tests).
    devices: the devices of the mesh (default: all).
    stop_after_steps: stop (with a checkpoint) after this many steps of this call, as if
      interrupted; the run resumes from there on the next call.
  Returns:
    The final TrainState.
  """
  # --- Set-up -------------------------------------------------------------------------------
  parallel.maybe_initialize_distributed(config.multihost)
  mesh = parallel.make_mesh(devices)
  num_devices = mesh.devices.size
  config_lib.require_divisible(config, num_devices)
  is_main = jax.process_index() == 0
  method = methods_lib.build(config, num_devices)
  schedule = optim.make_schedule(config)
  tx = optim.make_optimizer(config)
  logging.info(
    'jaxvssl: method=%s backbone=%s devices=%d global batch=%d peak lr=%.3g (base %.3g x %d / %d)',
    config.method,
    config.model.backbone,
    num_devices,
    config.batch_size,
    optim.peak_learning_rate(config),
    config.optim.base_learning_rate,
    config.batch_size,
    config.optim.reference_batch_size,
  )
  print(
    f'[jaxvssl] {config.method}: {num_devices} device(s), global batch {config.batch_size}, '
    f'peak learning rate {optim.peak_learning_rate(config):.4g} (linear scaling from '
    f'{config.optim.base_learning_rate:g} at batch {config.optim.reference_batch_size})',
    flush=True,
  )

  # --- State: resume or init ------------------------------------------------------------------
  manager = checkpointing.make_manager(
    workdir, config.keep_checkpoints, config.checkpoint_every_steps, config.async_checkpointing
  )
  start_step = manager.latest_step() or 0

  batches = pipeline.TimedIterator(
    make_batches(config, method, start_step, source)
    if batches_fn is None
    else batches_fn(start_step)
  )
  first = next(batches)
  first_global = parallel.global_batch(first, mesh)
  init_fn = functools.partial(state_lib.init_train_state, method, tx, seed=config.seed)
  abstract_ts = jax.eval_shape(init_fn, first_global)
  replicated = parallel.replicated_sharding(mesh)
  state_sharding = jax.tree_util.tree_map(lambda _: replicated, abstract_ts)
  if start_step:
    ts = _restore_or_explain(
      manager, checkpointing.abstract_like(abstract_ts, mesh), config, workdir
    )
    print(
      f'[jaxvssl] resumed from {checkpointing.checkpoint_path(manager, start_step)}', flush=True
    )
  else:
    ts = jax.jit(init_fn, out_shardings=state_sharding)(first_global)
    # Pretrained weights (e.g. CACL's frozen frame encoder) enter here, after init and outside
    # jit, as big_vision's `model_init` does; a resumed run has them in its checkpoint already.
    ts = state_lib.load_pretrained(method, tx, ts, runs.load_run)
    ts = jax.device_put(ts, state_sharding)
  if is_main:  # only now: a failed resume must not overwrite the run's own config.json
    config_lib.save_config(config, workdir)
  last_good = manager.latest_step()

  # --- Compiled step ----------------------------------------------------------------------------
  batch_sharding = jax.tree_util.tree_map(lambda _: parallel.data_sharding(mesh), first_global)
  step_fn = jax.jit(
    make_train_step(method, tx, schedule),
    in_shardings=(state_sharding, batch_sharding),
    out_shardings=(state_sharding, replicated),
    donate_argnums=(0,),
  )

  writer = metrics_lib.create_writer(workdir, is_main, start_step)
  monitor = _make_monitor(config, method) if config.monitor.every_steps else None
  bar = metrics_lib.progress_bar(config.num_steps, start_step, config.progress_bar and is_main)
  clips_per_step = config.batch_size
  pending: list[tuple[int, dict[str, jax.Array]]] = []

  def check_pending() -> dict[str, float]:
    """Reads the metrics of the steps since the last check; stops on a NaN/Inf loss."""
    if not pending:
      return {}
    fetched = jax.device_get([m for _, m in pending])
    steps = [s for s, _ in pending]
    bad = metrics_lib.first_non_finite(steps, np.array([m['loss'] for m in fetched]))
    pending.clear()
    if bad is not None:
      manager.wait_until_finished()
      raise errors.NonFiniteLossError(
        f'loss is not finite at step {bad}; training stopped. Last good checkpoint: '
        f'{checkpointing.checkpoint_path(manager, last_good)}'
      )
    return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}

  # --- Loop ---------------------------------------------------------------------------------
  step = start_step
  batch_global = first_global
  end_step = (
    config.num_steps
    if stop_after_steps is None
    else min(config.num_steps, start_step + stop_after_steps)
  )
  t_start = t_interval = time.perf_counter()
  last_logged = start_step
  batches.pop_wait()  # the first batch's wait belongs to start-up, not to step 1
  while step < end_step:
    ts, step_metrics = step_fn(ts, batch_global)
    step += 1
    pending.append((step, step_metrics))
    if bar is not None:
      bar.update(1)

    if step % config.log_every_steps == 0 or step == end_step:
      scalars = check_pending()
      now = time.perf_counter()
      wait_s, _ = batches.pop_wait()
      scalars.update(
        metrics_lib.throughput(wait_s, step - last_logged, now - t_interval, clips_per_step)
      )
      done = step - start_step
      eta = (time.perf_counter() - t_start) / done * (config.num_steps - step)
      scalars['perf/eta_minutes'] = eta / 60
      writer.write_scalars(step, scalars)
      if bar is not None:
        bar.set_postfix(
          loss=f'{scalars["loss"]:.4f}', data=f'{scalars["perf/data_wait_fraction"]:.0%}'
        )
      elif is_main:
        print(
          f'[jaxvssl] step {step}/{config.num_steps} loss {scalars["loss"]:.4f} '
          f'{scalars["perf/clips_per_sec"]:.1f} clips/s data-wait '
          f'{scalars["perf/data_wait_fraction"]:.0%} eta {eta / 60:.1f} min',
          flush=True,
        )
      t_interval, last_logged = now, step

    if step % config.checkpoint_every_steps == 0 or step == end_step:
      check_pending()  # never checkpoint a state that followed a NaN
      checkpointing.save(manager, step, ts, force=True)
      last_good = step

    if monitor is not None and step % config.monitor.every_steps == 0:
      writer.write_scalars(step, monitor(method, ts))

    if step < end_step:
      batch_global = parallel.global_batch(next(batches), mesh)

  # --- Done -----------------------------------------------------------------------------------
  manager.wait_until_finished()
  writer.flush()
  if bar is not None:
    bar.close()
  return ts


def _make_monitor(config: ml_collections.ConfigDict, method: methods_lib.Method) -> Callable:
  """Periodic kNN / R@k on a small held-out subset (`config.monitor`), logged with the metrics."""

  m = config.monitor

  def subset(split: str, count: int):
    source = pipeline.load_split(config.data, split, 0, 1).take(count)
    return lambda: pipeline.make_eval_dataset(
      config.data,
      split,
      batch_size=config.evaluation.batch_size,
      num_clips=m.num_clips,
      num_frames=config.data.num_frames,
      stride=config.data.stride,
      source=source,
    ).as_numpy_iterator()

  gallery = subset(config.data.train_split, m.num_train_videos)
  queries = subset(config.data.eval_split, m.num_test_videos)

  def run(method, ts):
    embed_fn = runs.embed_fn_from_state(config, method, ts.params, ts.state)
    return monitor_lib.monitor_metrics(embed_fn, gallery, queries)

  return run
