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
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvssl.evaluation import aggregation
from jaxvssl.evaluation.features import _to_numpy, extract_features
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


def finetune(
  backbone: nn.Module,
  backbone_variables: Mapping[str, Any],
  train_data: Iterable[Mapping[str, Any]],
  eval_data: Iterable[Mapping[str, Any]] | None,
  num_classes: int,
  cfg: FinetuneConfig | None = None,
  out_dir: str | os.PathLike | None = None,
  *,
  run_name: str | None = None,
) -> tuple[dict[str, float], dict[str, Any], list[dict]]:
  """Finetunes `backbone` + a new head.

  Args:
    backbone: flax module, `apply(v, x [B,T,H,W,C], train) -> [B, D]`.
    backbone_variables: its pretrained variables (`params`, optionally `batch_stats`).
    train_data: iterable of `{cfg.input_key: [B, T, H, W, C], 'label': [B]}` with B =
      cfg.batch_size; must provide at least `cfg.total_steps()` batches (repeat it).
    eval_data: eval pipeline batches (see module doc) or None to skip evaluation.
    num_classes: classifier width.
  Returns:
    `(metrics, variables, history)`: metrics `finetune/clip_top1`, `finetune/video_top1`,
    `finetune/final_train_loss`; the trained variables; history rows `{'step', 'loss',
    'train_top1', 'learning_rate'}` every `log_every_steps` (also written to
    `<out_dir>/metrics.jsonl`).
  """
  cfg = cfg or FinetuneConfig()
  total_steps = cfg.total_steps()
  model = ClassifierOnBackbone(backbone=backbone, num_classes=num_classes, dropout=cfg.dropout)
  it: Iterator = iter(train_data)

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
    if x.ndim != 5 or x.shape[0] != cfg.batch_size:
      raise ValueError(
        f"finetune: train '{cfg.input_key}' has shape {x.shape}; expected "
        f'[batch_size={cfg.batch_size}, T, H, W, C]'
      )
    return x, _to_numpy(batch['label']).astype(np.int32)

  x0, y0 = next_batch(0)
  variables = init_from_pretrained(model, backbone_variables, x0[:1], cfg.seed)
  params = variables['params']
  model_state = {k: v for k, v in variables.items() if k != 'params'}
  tx = _optimizer(cfg, total_steps)
  opt_state = tx.init(params)
  schedule = optax.cosine_decay_schedule(cfg.learning_rate, total_steps)
  dropout_key = jax.random.PRNGKey(cfg.seed + 1)

  @jax.jit
  def train_step(params, model_state, opt_state, x, y, step):
    def loss_fn(p):
      logits, new_state = model.apply(
        {'params': p, **model_state},
        x,
        train=True,
        mutable=list(model_state),
        rngs={'dropout': jax.random.fold_in(dropout_key, step)},
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, (logits, new_state)

    (loss, (logits, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, dict(new_state), opt_state, loss, jnp.mean(jnp.argmax(logits, -1) == y)

  history = []
  metrics_file = None
  if out_dir is not None:
    os.makedirs(out_dir, exist_ok=True)
    metrics_file = open(os.path.join(out_dir, 'metrics.jsonl'), 'w')
  x, y = x0, y0
  loss = float('nan')
  try:
    for step in range(total_steps):
      if step > 0:
        x, y = next_batch(step)
      params, model_state, opt_state, loss, acc = train_step(
        params, model_state, opt_state, x, y, step
      )
      if (step + 1) % cfg.log_every_steps == 0 or step + 1 == total_steps:
        row = {
          'step': step + 1,
          'loss': float(loss),
          'train_top1': float(acc),
          'learning_rate': float(schedule(step)),
        }
        history.append(row)
        if metrics_file is not None:
          metrics_file.write(json.dumps(row) + '\n')
          metrics_file.flush()
  finally:
    if metrics_file is not None:
      metrics_file.close()

  variables = {'params': params, **model_state}
  metrics = {'finetune/final_train_loss': float(loss)}
  if eval_data is not None:
    metrics.update(evaluate_classifier(model, variables, eval_data, prefix='finetune/'))
  if out_dir is not None:
    reports.write_results(
      out_dir,
      {k: v for k, v in metrics.items() if 'top1' in k},
      protocol='finetune',
      run_name=run_name,
      details={
        'config': dataclasses.asdict(cfg),
        'total_steps': total_steps,
        'final_train_loss': metrics['finetune/final_train_loss'],
      },
    )
  return metrics, variables, history


def evaluate_classifier(
  model: nn.Module,
  variables: Mapping[str, Any],
  eval_data: Iterable[Mapping[str, Any]],
  prefix: str = '',
) -> dict[str, float]:
  """Clip- and video-level top-1 of a classifier (eval mode) on eval pipeline batches."""
  logits_fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
  logits = extract_features(lambda clips: np.asarray(logits_fn(variables, clips)), eval_data)
  acc = aggregation.clip_and_video_top1(logits['features'], logits['labels'])
  return {f'{prefix}{k}': v for k, v in acc.items()}


FINETUNE_VIEW = 'finetune_clip'  # name of the single random-crop train view
