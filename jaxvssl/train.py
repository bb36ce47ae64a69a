"""The pretraining loop: one readable function, `jax.jit` over a data-parallel mesh.

Sections: set-up -> method and data -> state (init or resume) -> compiled step -> loop (log,
NaN guard, checkpoint, monitor) -> final checkpoint. Every method runs through this loop; a method
only says which views it needs and how its loss is combined (`jaxvssl/methods/base.py`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import logging
from etils import epath

from jaxvssl import checkpointing, errors, optim, parallel, runs
from jaxvssl import config as config_lib
from jaxvssl import methods as methods_lib
from jaxvssl import metrics as metrics_lib
from jaxvssl import state as state_lib
from jaxvssl import workdir as workdir_lib
from jaxvssl.evaluation import monitor as monitor_lib
from jaxvssl.inputs import device as input_device
from jaxvssl.inputs import pipeline, reading, timing
from jaxvssl.state import TrainState


def make_train_step(
  method: methods_lib.Method,
  tx: optax.GradientTransformation,
  schedule: optax.Schedule,
  prepare: Callable[[dict[str, jax.Array]], dict[str, jax.Array]] | None = None,
) -> Callable:
  """The pure step: (TrainState, batch) -> (TrainState, metrics).

  `prepare` (e.g. `input_device.prepare_batch` bound to config.data) turns the transferred batch
  into the one the method sees, on the device: uint8 pixels normalised, device augmentation.
  """

  def train_step(ts: TrainState, batch: dict[str, jax.Array]):
    if prepare is not None:
      batch = prepare(batch)
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


def check_data_exists(data: ml_collections.ConfigDict) -> None:
  """Fails before any work if the configured TFDS data set was never built or prepared."""
  data_dir = data.data_dir or os.path.expanduser(os.path.join('~', 'tensorflow_datasets'))
  name = data.name.split(':')[0]  # 'name/config[:version]'
  if not epath.Path(data_dir).joinpath(*name.split('/')).is_dir():  # also gs:// data dirs
    raise errors.DataNotFoundError(
      f'config.data.name={data.name!r}: no such data set in {data_dir!r} '
      '(config.data.data_dir). Build synthetic_motion with `jaxvssl build-data --data_dir '
      f'{data_dir}`, prepare a real one with `jaxvssl prepare ...` (docs/data.md), or point '
      'config.data.data_dir at the directory that holds it'
    )


def _check_pretrained_runs(method: methods_lib.Method) -> None:
  """Fails before any data is read if a run that `load_pretrained` needs does not exist."""
  methods_lib.base.check_init_from(method.config)
  for key, path in method.pretrained_runs().items():
    if not (epath.Path(path) / 'config.json').exists():
      raise errors.PretrainedWeightsError(
        f'config.{key}={path!r}: not a jaxvssl run directory ({path}/config.json does not '
        'exist); train that run first (docs/methods) or point the key at it'
      )


def _check_config_change(
  config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool
) -> list[str]:
  """The keys in which `config` differs from the run's config.json; refused unless allowed."""
  path = epath.Path(workdir) / 'config.json'
  if not path.exists():
    return []
  changed = config_lib.config_diff(
    json.loads(path.read_text()), json.loads(config.to_json_best_effort())
  )
  if changed and not allow_config_change:
    raise errors.ResumeMismatchError(
      f'{workdir} holds a run started with another config. Config keys that differ from '
      f'{path}: {"; ".join(changed)}. Rerun with the config it was started with, use a new '
      '--workdir, or pass --allow_config_change to resume with these values (the change is '
      'recorded in config_history.jsonl).'
    )
  return changed


def _resume(
  manager, reopen, abstract_state, workdir: str, changed: list[str]
) -> tuple[TrainState, int, Any]:
  """Restores the newest intact checkpoint; corrupt newer ones are set aside and named.

  Returns (train state, its step, the checkpoint manager to go on with).
  """
  ts, step, failures, manager = checkpointing.restore_newest_intact(manager, abstract_state, reopen)
  if ts is None:
    tried = '; '.join(f'step {s}: {why}' for s, why in failures)
    if changed:  # the config changed the train state's structure
      raise errors.ResumeMismatchError(
        f'{workdir} holds checkpoints whose train state does not match this config, so it '
        f'cannot be resumed. Config keys that differ from its config.json: {"; ".join(changed)}. '
        f'Use a new --workdir, or the config the run was started with. ({tried})'
      )
    raise errors.CorruptCheckpointError(
      f'no checkpoint in {manager.directory} can be restored ({tried}); move the corrupt '
      'checkpoints away to start from scratch, or use a new --workdir'
    )
  for bad, why in failures:
    kept = checkpointing.set_aside(manager, bad)
    print(f'[jaxvssl] checkpoint step {bad} is corrupt ({why}); moved to {kept}', flush=True)
  return ts, step, manager


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[int]]:
  """SIGTERM / SIGINT become a request to stop after the current step (the loop saves, exits).

  A second Ctrl-C stops at once (the last checkpoint is intact). Only the main thread can
  handle signals; elsewhere nothing is installed.
  """
  requested: list[int] = []
  if threading.current_thread() is not threading.main_thread():
    yield requested
    return

  def handler(signum, frame):
    del frame
    if requested and signum == signal.SIGINT:
      raise KeyboardInterrupt
    requested.append(signum)
    print(
      f'[jaxvssl] {signal.Signals(signum).name}: finishing this step and saving a checkpoint',
      flush=True,
    )

  previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield requested
  finally:
    for s, h in previous.items():
      signal.signal(s, h)


def _append_history(workdir: str, start_step: int, changed: list[str], config) -> None:
  """One line per (re)start: the step, the keys changed at it and the whole config used."""
  record = {
    'start_step': start_step,
    'time': time.strftime('%Y-%m-%dT%H:%M:%S'),
    'changed': changed,
    'config': json.loads(config.to_json_best_effort()),
  }
  with (epath.Path(workdir) / 'config_history.jsonl').open('a') as f:
    f.write(json.dumps(record) + '\n')


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  batches_fn: Callable[[int], Iterator[dict[str, np.ndarray]]] | None = None,
  source: Any = None,
  devices: list[jax.Device] | None = None,
  stop_after_steps: int | None = None,
  allow_config_change: bool = False,
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
    allow_config_change: resume even if `config` differs from the run's config.json (the new
      config is recorded in config_history.jsonl); otherwise such a resume is refused.
  Returns:
    The final TrainState.
  Raises:
    jaxvssl.errors.WorkdirError, ResumeMismatchError, CorruptCheckpointError,
    CheckpointWriteError, NonFiniteLossError, TrainingInterrupted (see docs/cli.md for exit codes).
  """
  # --- Set-up -------------------------------------------------------------------------------
  if batches_fn is None and source is None:
    check_data_exists(config.data)  # before JAX starts: a missing data set fails in seconds
  parallel.maybe_initialize_distributed(config.multihost)  # before any other JAX call
  if jax.process_index() == 0:
    workdir_lib.check_writable(workdir)
  with contextlib.ExitStack() as stack:
    if jax.process_index() == 0:
      stack.enter_context(workdir_lib.lock(workdir))
    stop_requests = stack.enter_context(_stop_requests())
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
    open_manager = functools.partial(
      checkpointing.make_manager,
      workdir,
      config.keep_checkpoints,
      config.checkpoint_every_steps,
      config.async_checkpointing,
    )
    manager = open_manager()
    init_fn = functools.partial(state_lib.init_train_state, method, tx, seed=config.seed)
    abstract_ts = jax.eval_shape(init_fn, method.example_batch(config.batch_size))
    replicated = parallel.replicated_sharding(mesh)
    state_sharding = jax.tree_util.tree_map(lambda _: replicated, abstract_ts)
    ts, start_step, changed = None, 0, []
    if not manager.all_steps():
      _check_pretrained_runs(method)
    else:
      changed = _check_config_change(config, workdir, allow_config_change)
      ts, start_step, manager = _resume(
        manager, open_manager, checkpointing.abstract_like(abstract_ts, mesh), workdir, changed
      )
      print(
        f'[jaxvssl] resumed from {checkpointing.checkpoint_path(manager, start_step)}', flush=True
      )
    # Global batches, `config.data.device_prefetch` of them put on the devices ahead; the timer
    # sees what the step waits for (host pipeline and the start of the transfer).
    batches = timing.TimedIterator(
      input_device.prefetch(
        make_batches(config, method, start_step, source)
        if batches_fn is None
        else batches_fn(start_step),
        config.data.device_prefetch,
        lambda local: parallel.global_batch(local, mesh),
      )
    )
    # uint8 pixels and device augmentation become normalised views inside jit (input_device).
    prepare = functools.partial(input_device.prepare_batch, data_cfg=config.data)
    first_global = next(batches)
    if ts is None:
      ts = jax.jit(lambda b: init_fn(prepare(b)), out_shardings=state_sharding)(first_global)
      # Pretrained weights (e.g. CACL's frozen frame encoder) enter here, after init and outside
      # jit, as big_vision's `model_init` does; a resumed run has them in its checkpoint already.
      ts = state_lib.load_pretrained(method, tx, ts, runs.load_run)
      ts = jax.device_put(ts, state_sharding)
    if is_main:  # only now: a failed resume must not overwrite the run's own config.json
      config_lib.save_config(config, workdir)
      _append_history(workdir, start_step, changed, config)
      if changed:
        print(f'[jaxvssl] resuming at step {start_step} with changed config: {changed}', flush=True)
    # last_saved: the newest checkpoint started; last_good: the newest one known to be complete.
    last_saved = last_good = manager.latest_step()

    # --- Compiled step ----------------------------------------------------------------------------
    batch_sharding = jax.tree_util.tree_map(lambda _: parallel.data_sharding(mesh), first_global)
    step_fn = jax.jit(
      make_train_step(method, tx, schedule, prepare),
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
          f'{checkpointing.checkpoint_path(manager, last_saved)}'
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
    warned_dead = False
    batches.pop_wait()  # the first batch's wait belongs to start-up, not to step 1
    while step < end_step:
      _check_saves(manager, last_good)  # a failed background save stops the run before this step
      if not manager.is_saving_in_progress():
        last_good = last_saved
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
        warning = None if warned_dead else metrics_lib.dead_network_warning(step, scalars)
        if warning:
          warned_dead = True
          print(warning, flush=True)
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
        _save(manager, step, ts, last_good)
        last_saved = step

      if monitor is not None and step % config.monitor.every_steps == 0:
        writer.write_scalars(step, monitor(method, ts))

      if stop_requests and step < end_step:  # SIGTERM / Ctrl-C: save this step, then stop
        check_pending()
        if manager.latest_step() != step:
          _save(manager, step, ts, last_good)
        manager.wait_until_finished()
        _check_saves(manager, last_good)
        writer.flush()
        path = checkpointing.checkpoint_path(manager, step)
        raise errors.TrainingInterrupted(
          f'interrupted by {signal.Signals(stop_requests[0]).name} at step {step}; saved {path}; '
          'rerun the same command to resume',
          stop_requests[0],
        )

      if step < end_step:
        batch_global = next(batches)

    # --- Done -----------------------------------------------------------------------------------
    manager.wait_until_finished()
    _check_saves(manager, last_good)
    writer.flush()
    if bar is not None:
      bar.close()
    return ts


def _save(manager, step: int, ts: TrainState, last_good: int | None) -> None:
  """Starts saving `ts` at `step` (async); a failure to start is a CheckpointWriteError."""
  try:
    checkpointing.save(manager, step, ts, force=True)
  except Exception as e:  # an unwritable or vanished directory, a full disk
    raise errors.CheckpointWriteError(
      f'saving checkpoint step {step} to {manager.directory} failed ({errors.summary(e)}); the '
      f'last good checkpoint is {checkpointing.checkpoint_path(manager, last_good)}; fix the '
      'storage and rerun to resume'
    ) from e


def _check_saves(manager, last_good: int | None) -> None:
  """Raises CheckpointWriteError if a background checkpoint save failed (full disk, lost mount)."""
  try:
    manager.check_for_errors()
  except Exception as e:  # orbax re-raises whatever the writer thread hit
    raise errors.CheckpointWriteError(
      f'saving a checkpoint to {manager.directory} failed ({errors.summary(e)}); the last good '
      f'checkpoint is '
      f'{checkpointing.checkpoint_path(manager, last_good)}; fix the storage and rerun to resume'
    ) from e


def _make_monitor(config: ml_collections.ConfigDict, method: methods_lib.Method) -> Callable:
  """Periodic kNN / R@k on a small held-out subset (`config.monitor`), logged with the metrics."""

  m = config.monitor

  def subset(split: str, count: int):
    source = reading.load_split(config.data, split, 0, 1).take(count)
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
