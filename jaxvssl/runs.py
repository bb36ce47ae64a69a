"""Run directories: restore a pretraining run, or a random initialisation, as an embedding function.

A run directory holds `config.json` and `checkpoints/` (written by `jaxvssl.train`). Evaluation
needs only `embed_fn(clips [B, T, H, W, C]) -> features [B, D]`, so every protocol works the
same on a pretrained checkpoint and on a random-init backbone.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections

from jaxvssl import checkpointing, errors, optim, parallel, state as state_lib
from jaxvssl import config as config_lib
from jaxvssl import methods as methods_lib
from jaxvssl.evaluation import features as features_lib

EmbedFn = features_lib.EmbedFn
RestoredRun = methods_lib.RestoredRun


def load_run(workdir: str, step: int | None = None) -> RestoredRun:
  """Restores (config, method, params, state, step) of the run in `workdir` on one device.

  Raises:
    jaxvssl.errors.DataNotFoundError: no config.json, no checkpoint, or not checkpoint `step`.
    jaxvssl.errors.ConfigError: its config.json is not a valid config.
  """
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.exists(config_path):
    raise errors.DataNotFoundError(
      f'{config_path} does not exist: is {workdir!r} a jaxvssl run directory?'
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
      f'no checkpoint in {os.path.join(workdir, "checkpoints")}: train the run first'
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
) -> EmbedFn:
  """The embedding of the method's downstream backbone, in chunks of one evaluation batch."""
  e = config.evaluation
  return features_lib.make_backbone_embed_fn(
    method.backbone(),
    method.backbone_variables(params, state),
    batch_size=e.batch_size * e.num_clips,
    feature=feature or e.feature,
  )


def random_init_embed_fn(config: ml_collections.ConfigDict, seed: int | None = None) -> EmbedFn:
  """The same backbone as `config`, randomly initialised."""
  method, params, state = random_init(config, seed)
  return embed_fn_from_state(config, method, params, state)
