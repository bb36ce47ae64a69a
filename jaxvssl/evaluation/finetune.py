"""Finetuning: the whole pretrained backbone plus a new linear head, trained end to end.

Protocol (defaults = the cacl paper setting; all `FinetuneConfig` fields):
  * network: pretrained backbone (any `jaxvssl.models.get_backbone` module) -> pooled feature
    `[B, D]` -> dropout(`dropout`) -> new Dense(num_classes) initialised from `seed`;
  * optimiser: SGD, momentum 0.9, learning rate `learning_rate` (0.1) with cosine decay to 0 over
    `epochs` (150) x steps_per_epoch, weight decay `weight_decay` on kernels only (rank >= 2);
    steps_per_epoch = `num_train_examples // batch_size` (batch 128) unless given;
  * BatchNorm runs in train mode (batch statistics, running averages updated) during training and
    uses the running averages at evaluation;
  * evaluation: every clip of every test video (`{'clips': [B, N, T, H, W, 3], 'valid', ...}`,
    the eval pipeline) is classified; clip-level top-1 and video-level top-1 (mean softmax over
    the N clips) exactly as for the linear probe (aggregation.py).
This is deliberately different from the linear probe: here every backbone weight moves.

Devices and restarts: the step is jitted over the 'data' axis of a mesh, like pretraining (batch
sharded, variables and optimizer state replicated; BatchNorm statistics are over the whole
global batch, so 1 and 8 devices compute the same function). The whole finetuning state (step,
variables, optimizer state, last loss) is checkpointed with orbax into `<out_dir>/checkpoints`
once per epoch (`checkpoint_every_steps`); a rerun with the same `out_dir` resumes from the newest
checkpoint and ends where an uninterrupted run ends, and a finished one only re-evaluates.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from etils import epath
from jax.sharding import Mesh

from jaxvssl import checkpointing, errors, parallel
from jaxvssl import metrics as metrics_lib
from jaxvssl.evaluation import aggregation
from jaxvssl.evaluation.features import _to_numpy, extract_features, sharded_apply
from jaxvssl.evaluation import reports


OPTIMIZERS = ('sgd', 'adamw')


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
  epochs: int = 150
  batch_size: int = 128
  learning_rate: float = 0.1
  momentum: float = 0.9  # 'sgd' only
  weight_decay: float = 5e-4  # not stated by the papers; a config choice
  # 'sgd' (the CNN papers' protocol) or 'adamw' (decoupled weight decay; what transformers such as
  # MViT are finetuned with: under SGD at a CNN's learning rate the tiny MViT stays at chance).
  optimizer: str = 'sgd'
  dropout: float = 0.5
  num_train_examples: int = 0  # train videos; with batch_size gives steps_per_epoch
  steps_per_epoch: int | None = None  # overrides num_train_examples // batch_size
  input_key: str = 'clips'  # key of the train batch holding [B, T, H, W, C]
  seed: int = 0
  log_every_steps: int = 10
  # Orbax checkpoints in <out_dir>/checkpoints every this many steps (0: once per epoch) and at
  # the end; a rerun with the same out_dir resumes from the newest.
  checkpoint_every_steps: int = 0
  keep_checkpoints: int = 2
  progress_bar: bool = True  # a tqdm bar on a terminal, else a line every log_every_steps

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f'FinetuneConfig.optimizer={self.optimizer!r}: must be one of {OPTIMIZERS}')

  def total_steps(self) -> int:
    spe = self.steps_per_epoch
    if spe is None:
      if self.num_train_examples < self.batch_size:
        raise ValueError(
          f'FinetuneConfig.num_train_examples={self.num_train_examples} < '
          f'batch_size={self.batch_size}; set num_train_examples or steps_per_epoch'
        )
      spe = self.num_train_examples // self.batch_size
    if spe < 1 or self.epochs < 1:
      raise ValueError(f'FinetuneConfig: steps_per_epoch={spe}, epochs={self.epochs} must be >= 1')
    return self.epochs * spe


class ClassifierOnBackbone(nn.Module):
  """backbone -> dropout -> Dense. Variables: {'params': {'backbone': ..., 'head': ...}, ...}."""

  backbone: nn.Module
  num_classes: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    feat = self.backbone(x, train=train)  # [B, D]
    feat = nn.Dropout(self.dropout, deterministic=not train)(feat)
    return nn.Dense(self.num_classes, name='head')(feat)  # [B, num_classes]


def init_from_pretrained(
  model: ClassifierOnBackbone, backbone_variables: Mapping[str, Any], sample: np.ndarray, seed: int
) -> dict[str, Any]:
  """Initialises the classifier and replaces its backbone subtree by the pretrained variables."""
  # jit: one compiled program instead of many eagerly dispatched (and compiled) ops
  init = jax.jit(lambda rng, x: model.init({'params': rng}, x, train=False))
  variables = init(jax.random.PRNGKey(seed), jnp.asarray(sample))
  variables = jax.tree.map(lambda x: x, dict(variables))  # mutable copy
  for collection, tree in backbone_variables.items():
    if collection not in variables or 'backbone' not in variables[collection]:
      raise KeyError(
        f"finetune: pretrained collection '{collection}' has no place in the model "
        f'(model collections: {sorted(variables)})'
      )
    want = jax.tree.structure(variables[collection]['backbone'])
    if jax.tree.structure(tree) != want:
      raise ValueError(f"finetune: pretrained '{collection}' tree does not match the backbone")
    variables[collection] = {**variables[collection], 'backbone': tree}
  return variables


def _optimizer(cfg: FinetuneConfig, total_steps: int) -> optax.GradientTransformation:
  schedule = optax.cosine_decay_schedule(cfg.learning_rate, total_steps)
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  if cfg.optimizer == 'adamw':
    return optax.adamw(schedule, weight_decay=cfg.weight_decay, mask=decay_mask)
  return optax.chain(
    optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask),
    optax.sgd(schedule, momentum=cfg.momentum),
  )


def _host_float(x: jax.Array) -> float:
  """A replicated scalar as a Python float; also on a pod, where no process holds every shard."""
  return float(np.asarray(x.addressable_data(0)))


TrainData = Iterable[Mapping[str, Any]] | Callable[[int], Iterable[Mapping[str, Any]]]
# Fields that change the finetuning trajectory: a resume with any of them changed is refused.
_TRAJECTORY_FIELDS = (
  'epochs',
  'batch_size',
  'learning_rate',
  'momentum',
  'weight_decay',
  'optimizer',
  'dropout',
  'num_train_examples',
  'steps_per_epoch',
  'input_key',
  'seed',
)
CONFIG_FILE = 'finetune_config.json'


def _check_resume_config(out_dir: epath.Path, cfg: FinetuneConfig, resuming: bool) -> None:
  """Records `cfg` in `<out_dir>/finetune_config.json`; a resume under another config is refused."""
  path = out_dir / CONFIG_FILE
  now = {k: v for k, v in dataclasses.asdict(cfg).items() if k in _TRAJECTORY_FIELDS}
  if resuming and path.exists():
    before = json.loads(path.read_text())
    changed = [f'{k}: {before.get(k)!r} -> {now[k]!r}' for k in now if before.get(k) != now[k]]
    if changed:
      raise errors.ResumeMismatchError(
        f'{out_dir} holds finetuning checkpoints of another finetune config ({"; ".join(changed)}); '
        'rerun with the config it was started with, or use another output directory'
      )
  out_dir.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(now, indent=2, sort_keys=True))


def finetune(
  backbone: nn.Module,
  backbone_variables: Mapping[str, Any],
  train_data: TrainData,
  eval_data: Iterable[Mapping[str, Any]] | None,
  num_classes: int,
  cfg: FinetuneConfig | None = None,
  out_dir: str | os.PathLike | None = None,
  *,
  run_name: str | None = None,
  mesh: Mesh | None = None,
  stop_after_steps: int | None = None,
) -> tuple[dict[str, float], dict[str, Any], list[dict]]:
  """Finetunes `backbone` + a new head, data parallel over `mesh`, resuming from `out_dir`.

  The step is jitted over the mesh's 'data' axis like pretraining: each batch sharded, the
  variables and optimizer state replicated. With `out_dir`, orbax checkpoints of (step,
  variables, optimizer state, last loss) go to `<out_dir>/checkpoints` every
  `cfg.checkpoint_every_steps` steps (0: once per epoch) and at the end; a later call with the
  same `out_dir` resumes from the newest one and gives the same result as an uninterrupted run
  (the dropout key of step s is `fold_in(seed + 1, s)` and the data stream restarts at s).

  Args:
    backbone: flax module, `apply(v, x [B,T,H,W,C], train) -> [B, D]`.
    backbone_variables: its pretrained variables (`params`, optionally `batch_stats`).
    train_data: this process's batches `{cfg.input_key: [b, T, H, W, C], 'label': [b]}`, b =
      cfg.batch_size / process count, at least `cfg.total_steps()` of them (repeat the data
      set); or `start_step -> such batches from step start_step on` (a resumed run then reads
      nothing twice; an iterable is skipped forward).
    eval_data: eval pipeline batches (see module doc; every process reads all of them) or None
      to skip evaluation.
    num_classes: classifier width.
    out_dir: metrics.jsonl, checkpoints/, finetune_config.json, results.json / .md.
    mesh: the devices (`jaxvssl.parallel.make_mesh`; default all); cfg.batch_size must split
      evenly over them.
    stop_after_steps: stop after this many steps of this call with a checkpoint, as if
      interrupted (no evaluation, no results files); the next call resumes.
  Returns:
    `(metrics, variables, history)`: metrics `finetune/clip_top1`, `finetune/video_top1`,
    `finetune/final_train_loss`; the trained variables; this call's history rows `{'step',
    'loss', 'train_top1', 'learning_rate'}` every `log_every_steps` (also appended to
    `<out_dir>/metrics.jsonl`, which keeps the rows of earlier calls up to the resumed step).
  """
  cfg = cfg or FinetuneConfig()
  total_steps = cfg.total_steps()
  mesh = parallel.make_mesh() if mesh is None else mesh
  num_devices = mesh.devices.size
  if cfg.batch_size % num_devices:
    raise errors.ConfigError(
      f'finetune.batch_size={cfg.batch_size} does not split evenly over {num_devices} devices; '
      'use a multiple of the device count'
    )
  local_batch = cfg.batch_size // jax.process_count()
  is_main = jax.process_index() == 0
  model = ClassifierOnBackbone(backbone=backbone, num_classes=num_classes, dropout=cfg.dropout)
  out = None if out_dir is None else epath.Path(out_dir)
  every = cfg.checkpoint_every_steps or total_steps // cfg.epochs  # default: once per epoch
  manager = None
  if out is not None:
    manager = checkpointing.make_manager(out, cfg.keep_checkpoints, every, async_save=True)
  start_step = 0 if manager is None or manager.latest_step() is None else manager.latest_step()
  if out is not None and is_main:
    _check_resume_config(out, cfg, resuming=start_step > 0)

  def batches_from(step: int) -> Iterator[Mapping[str, Any]]:
    if callable(train_data):
      return iter(train_data(step))
    return itertools.islice(iter(train_data), step, None)

  # A finished run resumed only to evaluate still needs one batch: it fixes the variables' shapes.
  it = batches_from(start_step if start_step < total_steps else 0)

  def next_batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    try:
      batch = next(it)
    except StopIteration:
      raise ValueError(
        f'finetune: train_data ran out at step {step} of {total_steps}; repeat the data set'
      ) from None
    if cfg.input_key not in batch:
      raise KeyError(
        f"finetune: train batch lacks key '{cfg.input_key}' (FinetuneConfig."
        f'input_key); has {sorted(batch)}'
      )
    x = _to_numpy(batch[cfg.input_key])
    if x.ndim != 5 or x.shape[0] != local_batch:
      raise ValueError(
        f"finetune: train '{cfg.input_key}' has shape {x.shape}; expected "
        f'[batch_size={cfg.batch_size} / {jax.process_count()} processes, T, H, W, C]'
      )
    return x, _to_numpy(batch['label']).astype(np.int32)

  x, y = next_batch(start_step)
  variables = init_from_pretrained(model, backbone_variables, x[:1], cfg.seed)
  tx = _optimizer(cfg, total_steps)
  schedule = optax.cosine_decay_schedule(cfg.learning_rate, total_steps)
  dropout_key = jax.random.PRNGKey(cfg.seed + 1)
  replicated = parallel.replicated_sharding(mesh)
  data = parallel.data_sharding(mesh)
  state = {
    'step': jnp.zeros((), jnp.int32),
    'params': variables['params'],
    'model_state': {k: v for k, v in variables.items() if k != 'params'},
    'opt_state': tx.init(variables['params']),
    'loss': jnp.full((), jnp.nan, jnp.float32),
  }
  if start_step:
    restored, restored_step, failures, manager = checkpointing.restore_newest_intact(
      manager,
      checkpointing.abstract_like(state, mesh),
      lambda: checkpointing.make_manager(out, cfg.keep_checkpoints, every, async_save=True),
    )
    if restored is None:
      raise errors.CorruptCheckpointError(
        f'no finetuning checkpoint in {manager.directory} can be restored '
        f'({"; ".join(f"step {s}: {w}" for s, w in failures)}); move them away to start again'
      )
    for bad, why in failures:
      kept = checkpointing.set_aside(manager, bad)
      print(f'[jaxvssl] finetune checkpoint step {bad} is corrupt ({why}); moved to {kept}')
    if restored_step != start_step:  # a newer one was corrupt: the data restarts earlier
      start_step = restored_step
      it = batches_from(start_step)  # (an iterable must be re-iterable here)
      x, y = next_batch(start_step)
    state = restored  # on the mesh already (the restore target's shardings)
    if is_main:
      print(f'[jaxvssl] finetune: resumed from step {start_step} of {total_steps}', flush=True)
  else:
    # Through host memory: the step donates its state, and a device_put could alias (then
    # delete) the caller's pretrained arrays.
    state = jax.device_put(jax.tree.map(np.asarray, state), replicated)

  def train_step(state, x, y):
    step = state['step']

    def loss_fn(p):
      logits, new_state = model.apply(
        {'params': p, **state['model_state']},
        x,
        train=True,
        mutable=list(state['model_state']),
        rngs={'dropout': jax.random.fold_in(dropout_key, step)},
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, (logits, new_state)

    (loss, (logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
    updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
    new = {
      'step': step + 1,
      'params': optax.apply_updates(state['params'], updates),
      'model_state': dict(new_state),
      'opt_state': opt_state,
      'loss': loss,
    }
    return new, jnp.mean(jnp.argmax(logits, -1) == y)

  step_fn = jax.jit(
    train_step,
    in_shardings=(replicated, data, data),
    out_shardings=(replicated, replicated),
    donate_argnums=(0,),
  )
  writer = None
  if out is not None and is_main:
    writer = metrics_lib.JsonlWriter(out / 'metrics.jsonl', resume_step=start_step)
  end_step = (
    total_steps if stop_after_steps is None else min(total_steps, start_step + stop_after_steps)
  )
  bar = metrics_lib.progress_bar(total_steps, start_step, cfg.progress_bar and is_main)
  history = []
  t_start = t_interval = time.perf_counter()
  last_logged = start_step
  try:
    for step in range(start_step, end_step):
      if step > start_step:
        x, y = next_batch(step)
      batch = parallel.global_batch({'x': x, 'y': y}, mesh)
      state, acc = step_fn(state, batch['x'], batch['y'])
      if bar is not None:
        bar.update(1)
      done = step + 1
      if done % cfg.log_every_steps == 0 or done == end_step:
        row = {
          'step': done,
          'loss': _host_float(state['loss']),
          'train_top1': _host_float(acc),
          'learning_rate': float(schedule(step)),
        }
        history.append(row)
        now = time.perf_counter()
        perf = metrics_lib.throughput(0.0, done - last_logged, now - t_interval, cfg.batch_size)
        t_interval, last_logged = now, done
        eta = (now - t_start) / (done - start_step) * (total_steps - done)
        if writer is not None:
          writer.write_scalars(done, {k: v for k, v in row.items() if k != 'step'})
        if bar is not None:
          bar.set_postfix(loss=f'{row["loss"]:.4f}', top1=f'{row["train_top1"]:.2f}')
        elif is_main:
          print(
            f'[jaxvssl] finetune step {done}/{total_steps} loss {row["loss"]:.4f} train top-1 '
            f'{row["train_top1"]:.3f} {perf["perf/clips_per_sec"]:.1f} clips/s '
            f'eta {eta / 60:.1f} min',
            flush=True,
          )
      if manager is not None and (done % every == 0 or done == end_step):
        checkpointing.save(manager, done, state, force=True)
  finally:
    if manager is not None:
      manager.wait_until_finished()
    if writer is not None:
      writer.close()
    if bar is not None:
      bar.close()

  variables = {'params': state['params'], **state['model_state']}
  metrics = {'finetune/final_train_loss': _host_float(state['loss'])}
  if end_step < total_steps:  # stopped early: the next call resumes, then evaluates
    return metrics, variables, history
  if eval_data is not None:
    metrics.update(evaluate_classifier(model, variables, eval_data, prefix='finetune/', mesh=mesh))
  if out is not None and is_main:
    reports.write_results(
      out,
      {k: v for k, v in metrics.items() if 'top1' in k},
      protocol='finetune',
      run_name=run_name,
      details={
        'config': dataclasses.asdict(cfg),
        'total_steps': total_steps,
        'final_train_loss': metrics['finetune/final_train_loss'],
        'devices': num_devices,
      },
    )
  return metrics, variables, history


def evaluate_classifier(
  model: nn.Module,
  variables: Mapping[str, Any],
  eval_data: Iterable[Mapping[str, Any]],
  prefix: str = '',
  mesh: Mesh | None = None,
) -> dict[str, float]:
  """Clip- and video-level top-1 of a classifier (eval mode) on eval pipeline batches.

  `mesh`: each batch's clips are split over its 'data' axis (`features.sharded_apply`).
  """
  logits_fn = sharded_apply(lambda v, x: model.apply(v, x, train=False), variables, mesh=mesh)
  logits = extract_features(logits_fn, eval_data)
  acc = aggregation.clip_and_video_top1(logits['features'], logits['labels'])
  return {f'{prefix}{k}': v for k, v in acc.items()}


FINETUNE_VIEW = 'finetune_clip'  # name of the single random-crop train view
