"""Linear probe: multinomial logistic regression on frozen (cached) clip features.

Protocol (all numbers are `LinearProbeConfig` defaults):
  1. Inputs: `extract_features` dicts for train and test, per-clip features `[V, N, D]` (the
     backbone's pooled last layer; N = clips x crops). Every clip is one training example with
     the label of its video.
  2. Hyper-parameter selection on TRAIN ONLY: a stratified (per class), seeded split of the train
     VIDEOS (all clips of a video on the same side) into fit / validation parts
     (`val_fraction`); every (learning rate, weight decay) of the grid is trained on the fit part
     and scored by video-level top-1 on the validation part; the best wins (ties: first in grid
     order, learning rates outer, weight decays inner). The test set is never read here.
  3. Retrain on ALL train videos with the chosen pair, evaluate on test:
     clip-level top-1 (each clip classified) and video-level top-1 (mean softmax over the N clips),
     see `aggregation.py`.
Features are standardised (per dimension, mean / std of the clips being fitted) when
`standardize` is set; the statistics are part of the trained probe, so shuffled test clips
(shuffle.py) go through exactly the same transform.
Optimiser: full-batch Adam, cosine-decayed learning rate, `num_steps` steps, zero init (the
problem is convex, so no initialisation randomness); loss = mean cross entropy + weight_decay / 2
* ||W||^2 (bias not decayed). The whole grid is trained at once with `jax.vmap`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvssl.evaluation import aggregation
from jaxvssl.evaluation import reports

_STD_EPS = 1e-6  # floor for the per-dimension std (constant feature dimensions)


@dataclasses.dataclass(frozen=True)
class LinearProbeConfig:
  learning_rates: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
  weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2)
  num_steps: int = 500
  val_fraction: float = 0.2
  seed: int = 0
  standardize: bool = True
  num_classes: int | None = None  # None: 1 + max train label

  def __post_init__(self):
    if not self.learning_rates or min(self.learning_rates) <= 0:
      raise ValueError(f'LinearProbeConfig.learning_rates={self.learning_rates}: need > 0 values')
    if not self.weight_decays or min(self.weight_decays) < 0:
      raise ValueError(f'LinearProbeConfig.weight_decays={self.weight_decays}: need >= 0 values')
    if self.num_steps < 1:
      raise ValueError(f'LinearProbeConfig.num_steps={self.num_steps}: need >= 1')
    if not 0.0 < self.val_fraction < 1.0:
      raise ValueError(f'LinearProbeConfig.val_fraction={self.val_fraction}: need in (0, 1)')

  @classmethod
  def from_mapping(cls, cfg: Mapping[str, Any] | None) -> 'LinearProbeConfig':
    """From a dict / ml_collections.ConfigDict; unknown keys are an error naming the key."""
    cfg = dict(cfg or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - known)
    if unknown:
      raise KeyError(f'LinearProbeConfig: unknown keys {unknown}; known {sorted(known)}')
    for key in ('learning_rates', 'weight_decays'):
      if key in cfg:
        cfg[key] = tuple(float(v) for v in cfg[key])
    return cls(**cfg)


@dataclasses.dataclass
class TrainedProbe:
  """A fitted probe: `logits = ((x - mean) / std) @ w + b`."""

  w: np.ndarray  # [D, C]
  b: np.ndarray  # [C]
  mean: np.ndarray  # [D]
  std: np.ndarray  # [D]
  learning_rate: float
  weight_decay: float

  def logits(self, features: np.ndarray) -> np.ndarray:
    """`[..., D]` features -> `[..., C]` logits (float32)."""
    x = (np.asarray(features, np.float32) - self.mean) / self.std
    return x @ self.w + self.b


def stratified_split(
  labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Per class, a seeded random `val_fraction` of the videos goes to validation.

  A class with n >= 2 videos gives round(n * val_fraction) of them, at least 1 and at most n - 1,
  to validation; a class with a single video keeps it for fitting.
  Returns sorted index arrays `(fit_idx, val_idx)`.
  """
  labels = np.asarray(labels).reshape(-1)
  rng = np.random.default_rng(seed)
  fit, val = [], []
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    idx = idx[rng.permutation(idx.size)]
    n_val = (
      0 if idx.size < 2 else int(np.clip(np.floor(idx.size * val_fraction + 0.5), 1, idx.size - 1))
    )
    val.append(idx[:n_val])
    fit.append(idx[n_val:])
  return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))


def _standardizer(x: np.ndarray, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
  d = x.shape[-1]
  if not enabled:
    return np.zeros(d, np.float32), np.ones(d, np.float32)
  flat = x.reshape(-1, d).astype(np.float64)
  return flat.mean(0).astype(np.float32), np.maximum(flat.std(0), _STD_EPS).astype(np.float32)


@functools.partial(jax.jit, static_argnames=('num_classes', 'num_steps'))
def _fit_grid(
  x: jax.Array, y: jax.Array, lrs: jax.Array, wds: jax.Array, *, num_classes: int, num_steps: int
) -> tuple[jax.Array, jax.Array]:
  """Full-batch Adam on `[M, D]` features for every (lr, wd) pair: returns `[G, D, C]`, `[G, C]`."""
  adam = optax.scale_by_adam()
  onehot = jax.nn.one_hot(y, num_classes)

  def loss_fn(params, wd):
    logits = x @ params['w'] + params['b']
    ce = optax.softmax_cross_entropy(logits, onehot).mean()
    return ce + 0.5 * wd * jnp.sum(params['w'] ** 2)

  def fit_one(lr, wd):
    params = {'w': jnp.zeros((x.shape[1], num_classes)), 'b': jnp.zeros((num_classes,))}
    schedule = optax.cosine_decay_schedule(1.0, num_steps)

    def step(t, carry):
      params, opt_state = carry
      grads = jax.grad(loss_fn)(params, wd)
      direction, opt_state = adam.update(grads, opt_state)
      params = jax.tree.map(lambda p, d: p - lr * schedule(t) * d, params, direction)
      return params, opt_state

    params, _ = jax.lax.fori_loop(0, num_steps, step, (params, adam.init(params)))
    return params['w'], params['b']

  return jax.vmap(fit_one)(lrs, wds)


def fit_probes(
  features: np.ndarray,
  labels: np.ndarray,
  grid: Sequence[tuple[float, float]],
  cfg: LinearProbeConfig,
  num_classes: int,
) -> list[TrainedProbe]:
  """Fits one probe per (lr, wd) in `grid` on clip features `[V, N, D]` with video labels `[V]`."""
  features = np.asarray(features, np.float32)
  v, n, d = features.shape
  mean, std = _standardizer(features, cfg.standardize)
  x = ((features - mean) / std).reshape(v * n, d)
  y = np.repeat(np.asarray(labels, np.int32), n)  # every clip carries its video's label
  lrs = jnp.asarray([g[0] for g in grid], jnp.float32)
  wds = jnp.asarray([g[1] for g in grid], jnp.float32)
  w, b = _fit_grid(
    jnp.asarray(x), jnp.asarray(y), lrs, wds, num_classes=num_classes, num_steps=cfg.num_steps
  )
  w, b = np.asarray(w), np.asarray(b)
  return [
    TrainedProbe(w[i], b[i], mean, std, float(lr), float(wd)) for i, (lr, wd) in enumerate(grid)
  ]


def _num_classes(train_labels: np.ndarray, cfg: LinearProbeConfig) -> int:
  c = int(np.max(train_labels)) + 1
  if cfg.num_classes is not None:
    if cfg.num_classes < c:
      raise ValueError(
        f'LinearProbeConfig.num_classes={cfg.num_classes} < 1 + max train label {c - 1}'
      )
    c = cfg.num_classes
  return c


def select_hyperparameters(
  train: Mapping[str, np.ndarray], cfg: LinearProbeConfig
) -> tuple[tuple[float, float], list[dict[str, float]]]:
  """Grid search on a validation split carved from TRAIN (the only input).

  Returns `((lr, wd), rows)` with one row per grid point:
  `{'learning_rate', 'weight_decay', 'val_clip_top1', 'val_video_top1'}`.
  """
  feats = np.asarray(train['features'], np.float32)
  labels = np.asarray(train['labels'])
  fit_idx, val_idx = stratified_split(labels, cfg.val_fraction, cfg.seed)
  if val_idx.size == 0:
    raise ValueError(
      'linear probe: no class has >= 2 train videos, cannot carve a validation split'
    )
  grid = [(lr, wd) for lr in cfg.learning_rates for wd in cfg.weight_decays]
  probes = fit_probes(feats[fit_idx], labels[fit_idx], grid, cfg, _num_classes(labels, cfg))
  rows = []
  for (lr, wd), probe in zip(grid, probes):
    acc = aggregation.clip_and_video_top1(probe.logits(feats[val_idx]), labels[val_idx])
    rows.append(
      {
        'learning_rate': lr,
        'weight_decay': wd,
        'val_clip_top1': acc['clip_top1'],
        'val_video_top1': acc['video_top1'],
      }
    )
  best = max(range(len(rows)), key=lambda i: (rows[i]['val_video_top1'], -i))
  return grid[best], rows


def train_linear_probe(
  train: Mapping[str, np.ndarray], cfg: LinearProbeConfig | None = None
) -> tuple[TrainedProbe, list[dict[str, float]]]:
  """Selects (lr, wd) on a train-carved validation split, then refits on all train videos."""
  cfg = cfg or LinearProbeConfig()
  (lr, wd), rows = select_hyperparameters(train, cfg)
  (probe,) = fit_probes(
    train['features'],
    train['labels'],
    [(lr, wd)],
    cfg,
    _num_classes(np.asarray(train['labels']), cfg),
  )
  return probe, rows


def probe_accuracy(probe: TrainedProbe, features: Mapping[str, np.ndarray]) -> dict[str, float]:
  """Clip- and video-level top-1 of a trained probe on an `extract_features` dict."""
  return aggregation.clip_and_video_top1(probe.logits(features['features']), features['labels'])


def evaluate_linear_probe(
  train: Mapping[str, np.ndarray],
  test: Mapping[str, np.ndarray],
  cfg: LinearProbeConfig | Mapping[str, Any] | None = None,
  out_dir: str | os.PathLike | None = None,
  *,
  run_name: str | None = None,
) -> tuple[dict[str, float], TrainedProbe]:
  """Full linear-probe protocol; returns (`{'linear_probe/clip_top1', 'linear_probe/video_top1'}`,
  the trained probe). Writes results.json / results.md into `out_dir` when given."""
  if not isinstance(cfg, LinearProbeConfig):
    cfg = LinearProbeConfig.from_mapping(cfg)
  probe, rows = train_linear_probe(train, cfg)
  acc = probe_accuracy(probe, test)
  metrics = {f'linear_probe/{k}': v for k, v in acc.items()}
  if out_dir is not None:
    reports.write_results(
      out_dir,
      metrics,
      protocol='linear_probe',
      run_name=run_name,
      details={
        'chosen_learning_rate': probe.learning_rate,
        'chosen_weight_decay': probe.weight_decay,
        'grid': rows,
        'config': dataclasses.asdict(cfg),
        'num_train_videos': int(len(train['labels'])),
        'num_test_videos': int(len(test['labels'])),
        'clips_per_video': int(np.asarray(test['features']).shape[1]),
      },
    )
  return metrics, probe
