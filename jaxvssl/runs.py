"""From a run (or a random initialisation) to an embedding function for evaluation.

`embed_fn(clips [B, T, H, W, C]) -> features [B, D]` is the only thing the evaluation suite
needs, so every protocol works the same on a pretrained checkpoint and on a random-init backbone.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import ml_collections

from jaxvssl import checkpointing, config as config_lib, parallel
from jaxvssl import methods as methods_lib
from jaxvssl.evaluation import features as features_lib

EmbedFn = features_lib.EmbedFn


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
  """The same backbone as `config`, randomly initialised (the baseline every table needs)."""
  method = methods_lib.build(config, 1)
  rng = jax.random.PRNGKey(config.seed if seed is None else seed)
  params, state = jax.jit(method.init)(rng, method.example_batch(2))
  return embed_fn_from_state(config, method, params, state)


def load_run(
  workdir: str, step: int | None = None
) -> tuple[ml_collections.ConfigDict, methods_lib.Method, Any, Any, int]:
  """Restores (config, method, params, state, step) of a pretraining run in `workdir`."""
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.exists(config_path):
    raise FileNotFoundError(
      f'{config_path} does not exist: is {workdir!r} a jaxvssl run directory?'
    )
  config = config_lib.config_from_json(config_path)
  from jaxvssl import train  # pylint: disable=g-import-not-at-top
  from jaxvssl import optim  # pylint: disable=g-import-not-at-top

  mesh = parallel.make_mesh(jax.devices()[:1])
  method = methods_lib.build(config, 1)
  manager = checkpointing.make_manager(
    workdir, config.keep_checkpoints, config.checkpoint_every_steps, async_save=False
  )
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {os.path.join(workdir, "checkpoints")}')
  tx = optim.make_optimizer(config)
  init_fn = functools.partial(train.init_train_state, method, tx, seed=config.seed)
  abstract = jax.eval_shape(init_fn, method.example_batch(2))
  ts = checkpointing.restore(manager, checkpointing.abstract_like(abstract, mesh), step)
  return config, method, ts.params, ts.state, step


def embed_fn_from_run(
  workdir: str, step: int | None = None, feature: str | None = None
) -> tuple[ml_collections.ConfigDict, EmbedFn, int]:
  config, method, params, state, step = load_run(workdir, step)
  return config, embed_fn_from_state(config, method, params, state, feature), step
