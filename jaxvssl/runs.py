"""Run directories: restore a pretraining run, or a random initialisation, as an embedding function.

A run directory holds `config.json` and `checkpoints/` (written by `jaxvssl.train`). Evaluation
needs only `embed_fn(clips [B, T, H, W, C]) -> features [B, D]`, so every protocol works the
same on a pretrained checkpoint and on a random-init backbone.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from jaxvssl import checkpointing, errors, optim, parallel
from jaxvssl import config as config_lib
from jaxvssl import methods as methods_lib
from jaxvssl import state as state_lib
from jaxvssl.evaluation import features as features_lib
from jaxvssl.evaluation import pretext as pretext_lib
from jaxvssl.inputs import device as input_device
from jaxvssl.inputs import pipeline, reading

# The view name of the natural clips that `natural_clip_batches` reads.
NATURAL_VIEW = 'clips'

EmbedFn = features_lib.EmbedFn
RestoredRun = methods_lib.RestoredRun


def load_run(workdir: str, step: int | None = None) -> RestoredRun:
  """Restores (config, method, params, state, step) of the run in `workdir` on one device.

  Raises:
    jaxvssl.errors.DataNotFoundError: no config.json, no checkpoint, or not checkpoint `step`.
    jaxvssl.errors.ConfigError: its config.json is not a valid config.
  """
  config_path = epath.Path(workdir) / 'config.json'  # also gs://
  if not config_path.exists():
    raise errors.DataNotFoundError(
      f'{config_path} does not exist: is {os.fspath(workdir)!r} a jaxvssl run directory?'
    )
  config = config_lib.config_from_json(config_path)
  mesh = parallel.make_mesh(jax.devices()[:1])
  method = methods_lib.build(config, 1)
  manager = checkpointing.make_manager(
    workdir, config.keep_checkpoints, config.checkpoint_every_steps, async_save=False
  )
  steps = sorted(manager.all_steps())
  if not steps:
    raise errors.DataNotFoundError(
      f'no checkpoint in {checkpointing.checkpoint_dir(workdir)}: train the run first'
    )
  step = steps[-1] if step is None else step
  if step not in steps:
    raise errors.DataNotFoundError(f'{workdir} has no checkpoint step {step}; it has {steps}')
  tx = optim.make_optimizer(config)
  abstract = state_lib.abstract_train_state(method, tx, method.example_batch(2), config.seed)
  ts = checkpointing.restore(manager, checkpointing.abstract_like(abstract, mesh), step)
  return RestoredRun(config=config, method=method, params=ts.params, state=ts.state, step=step)


def random_init(
  config: ml_collections.ConfigDict, seed: int | None = None
) -> tuple[methods_lib.Method, Any, Any]:
  """(method, params, state) of `config`'s networks at random initialisation (the baseline)."""
  method = methods_lib.build(config, 1)
  rng = jax.random.PRNGKey(config.seed if seed is None else seed)
  params, state = jax.jit(method.init)(rng, method.example_batch(2))
  return method, params, state


def embed_fn_from_state(
  config: ml_collections.ConfigDict,
  method: methods_lib.Method,
  params: Any,
  state: Any,
  feature: str | None = None,
  bn_batches: Iterable[np.ndarray] | None = None,
  mesh: Any = None,
) -> EmbedFn:
  """The embedding of the method's downstream backbone, in chunks of one evaluation batch.

  `bn_batches` (clips `[B, T, H, W, C]`): when given, the backbone's BatchNorm running statistics
  are first re-estimated on them (`recompute_batch_stats`); `evaluate_run` passes
  `natural_clip_batches(config)` when `config.evaluation.recompute_bn_batches > 0`.
  `mesh`: each chunk is split over its 'data' axis (`features.sharded_apply`); None: one device.
  """
  e = config.evaluation
  variables = method.backbone_variables(params, state)
  if bn_batches is not None:
    variables = recompute_batch_stats(method.backbone(), variables, bn_batches)
  return features_lib.make_backbone_embed_fn(
    method.backbone(),
    variables,
    batch_size=e.batch_size * e.num_clips,
    feature=feature or e.feature,
    mesh=mesh,
  )


def random_init_embed_fn(
  config: ml_collections.ConfigDict,
  seed: int | None = None,
  bn_batches: Iterable[np.ndarray] | None = None,
  mesh: Any = None,
) -> EmbedFn:
  """The same backbone as `config`, randomly initialised (`bn_batches`, `mesh`:
  `embed_fn_from_state`)."""
  method, params, state = random_init(config, seed)
  return embed_fn_from_state(config, method, params, state, bn_batches=bn_batches, mesh=mesh)


def recompute_batch_stats(
  module: Any, variables: dict[str, Any], batches: Iterable[np.ndarray]
) -> dict[str, Any]:
  """`variables` with every BatchNorm running statistic replaced by its mean batch statistic.

  "Precise BN": the backbone runs in train mode (batch statistics, no parameter change) on each
  batch of `batches` (clips `[B, T, H, W, C]`, one shape); each running mean / variance becomes
  the mean over the batches of that layer's batch mean / (biased) variance. Used to re-estimate
  the statistics of a CACL backbone, whose training statistics mixed natural clips x with
  shuffled copies x~, on natural clips only.

  The module's own update is an EMA, new = m * old + (1 - m) * batch, with an unknown momentum
  m; the batch statistic is recovered (up to float rounding) from updates of the same batch
  starting from zeros (= (1 - m) * batch) and, for the first batch, from ones
  (= m + (1 - m) * batch): their difference is m (the median over a leaf's channels). So every
  variable of 'batch_stats' must be such an EMA, updated once per forward pass (true of the
  backbones' `jaxvssl.models.norm.BatchNorm` and of `flax.linen.BatchNorm`).

  Returns:
    A new variables dict; `variables` itself is unchanged. With no batch, `variables` as is.
  """
  if 'batch_stats' not in variables:
    return variables
  stats = variables['batch_stats']

  @jax.jit
  def update(start, clips):
    _, new = module.apply(
      {**variables, 'batch_stats': start},
      clips,
      train=True,
      mutable=['batch_stats'],
      rngs={'dropout': jax.random.PRNGKey(0)},
    )
    return new['batch_stats']

  zeros = jax.tree_util.tree_map(jnp.zeros_like, stats)
  ones = jax.tree_util.tree_map(jnp.ones_like, stats)
  total, momentum, count = None, None, 0
  for clips in batches:
    clips = jnp.asarray(clips, jnp.float32)
    from_zeros = update(zeros, clips)
    if momentum is None:
      from_ones = update(ones, clips)
      momentum = jax.tree_util.tree_map(
        lambda a, b: jnp.median(a.astype(jnp.float32) - b.astype(jnp.float32)),
        from_ones,
        from_zeros,
      )
    batch_stats = jax.tree_util.tree_map(
      lambda z, m: z.astype(jnp.float32) / (1.0 - m), from_zeros, momentum
    )
    total = batch_stats if total is None else jax.tree_util.tree_map(jnp.add, total, batch_stats)
    count += 1
  if count == 0:
    return variables
  mean = jax.tree_util.tree_map(lambda t, old: (t / count).astype(old.dtype), total, stats)
  return {**variables, 'batch_stats': mean}


def natural_clip_batches(
  config: ml_collections.ConfigDict, num_batches: int | None = None, source: Any = None
) -> Iterator[np.ndarray]:
  """`num_batches` (default `config.evaluation.recompute_bn_batches`) batches of natural clips.

  One view of `data.num_frames` frames at `data.stride` in their natural order, with the training
  augmentation of `config.data` (the distribution the statistics were trained on, minus the
  shuffled copies), `config.batch_size` clips per batch (the training batch size), from the
  training split in the order of `config.seed`. Yields float32 `[B, T, H, W, C]`.
  """
  n = config.evaluation.recompute_bn_batches if num_batches is None else num_batches
  if n <= 0:
    return
  view = pipeline.ViewSpec(
    NATURAL_VIEW, num_frames=config.data.num_frames, stride=config.data.stride
  )
  ds = pipeline.make_train_dataset(
    config.data,
    [view],
    global_batch_size=config.batch_size,
    seed=config.seed,
    source=source,
  )
  for batch in ds.take(n).as_numpy_iterator():
    yield batch[NATURAL_VIEW]


def held_out_pretext(
  config: ml_collections.ConfigDict,
  method: methods_lib.Method,
  params: Any,
  state: Any,
  step: int,
  num_batches: int | None = None,
  source: Any = None,
) -> dict[str, float]:
  """The method's training metrics on its training views of the test videos (no update).

  `num_batches` (default `config.evaluation.pretext_batches`) batches of `config.batch_size`
  clips built by the method's own training pipeline (`Method.train_dataset`, seed
  `config.seed`) from `config.data.eval_split` (or `source`), each through `method.loss_fn`
  with `params` / `state` at `step`; `jaxvssl.evaluation.pretext` averages the scalars.
  Returns {} when the split holds fewer videos than one batch.
  """
  n = config.evaluation.pretext_batches if num_batches is None else num_batches
  if n <= 0:
    return {}
  if source is None:
    source = reading.load_split(config.data, config.data.eval_split, 0, 1)
  try:
    ds = method.train_dataset(
      global_batch_size=config.batch_size,
      seed=config.seed,
      process_index=0,
      process_count=1,
      start_step=0,
      source=source,
    )
  except ValueError as e:  # e.g. fewer test videos than one training batch
    print(f'[jaxvssl] pretext diagnostics skipped: {e}', flush=True)
    return {}
  prepare = functools.partial(input_device.prepare_batch, data_cfg=config.data)

  @jax.jit
  def metrics_fn(params, state, batch, rng):
    _, (metrics, _) = method.loss_fn(params, state, prepare(batch), rng, step)
    return metrics

  return pretext_lib.pretext_diagnostics(
    lambda batch, rng: metrics_fn(params, state, batch, rng),
    ds.take(n).as_numpy_iterator(),
    seed=config.seed,
  )
