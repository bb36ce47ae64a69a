"""From a run (or a random initialisation) to an embedding function for evaluation.

`embed_fn(clips [B, T, H, W, C]) -> features [B, D]` is the only thing the evaluation suite
needs, so every protocol works the same on a pretrained checkpoint and on a random-init backbone.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvssl import checkpointing, config as config_lib, parallel
from jaxvssl import methods as methods_lib

EmbedFn = Callable[[np.ndarray], np.ndarray]


def make_embed_fn(module: Any, variables: dict[str, Any], feature: str = 'pooled') -> EmbedFn:
  """Jitted inference (BatchNorm running statistics) of a backbone.

  Args:
    module: a backbone of `jaxvssl.models`.
    variables: its {'params', 'batch_stats'}.
    feature: 'pooled' (the last pooling layer, [B, D]) or 'pool5' (the spatially max-pooled last
      conv map averaged over time, as in VCOP/CACL retrieval).
  """
  if feature not in ('pooled', 'pool5'):
    raise ValueError(f"feature={feature!r} must be 'pooled' or 'pool5'")

  @jax.jit
  def apply(variables, clips):
    if feature == 'pooled':
      return module.apply(variables, clips, train=False)
    _, stages = module.apply(variables, clips, train=False, return_stages=True)
    out = stages['pool5']
    return out.reshape(out.shape[0], -1)

  def embed(clips: np.ndarray) -> np.ndarray:
    return np.asarray(apply(variables, jnp.asarray(clips, jnp.float32)), np.float32)

  return embed


def embed_fn_from_state(config: ml_collections.ConfigDict, method: methods_lib.Method,
                        params: Any, state: Any) -> EmbedFn:
  variables = method.backbone_variables(params, state)
  return make_embed_fn(method.backbone(), variables, config.evaluation.feature)


def random_init_embed_fn(config: ml_collections.ConfigDict, seed: int | None = None) -> EmbedFn:
  """The same backbone as `config`, randomly initialised (the baseline every table needs)."""
  method = methods_lib.build(config, 1)
  rng = jax.random.PRNGKey(config.seed if seed is None else seed)
  params, state = jax.jit(method.init)(rng, method.example_batch(2))
  return embed_fn_from_state(config, method, params, state)


def load_run(workdir: str, step: int | None = None
             ) -> tuple[ml_collections.ConfigDict, methods_lib.Method, Any, Any, int]:
  """Restores (config, method, params, state, step) of a pretraining run in `workdir`."""
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.exists(config_path):
    raise FileNotFoundError(f'{config_path} does not exist: is {workdir!r} a jaxvssl run directory?')
  config = config_lib.config_from_json(config_path)
  from jaxvssl import train  # pylint: disable=g-import-not-at-top
  from jaxvssl import optim  # pylint: disable=g-import-not-at-top
  mesh = parallel.make_mesh(jax.devices()[:1])
  method = methods_lib.build(config, 1)
  manager = checkpointing.make_manager(workdir, config.keep_checkpoints,
                                       config.checkpoint_every_steps, async_save=False)
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {os.path.join(workdir, "checkpoints")}')
  tx = optim.make_optimizer(config)
  init_fn = functools.partial(train.init_train_state, method, tx, seed=config.seed)
  abstract = jax.eval_shape(init_fn, method.example_batch(2))
  ts = checkpointing.restore(manager, checkpointing.abstract_like(abstract, mesh), step)
  return config, method, ts.params, ts.state, step


def embed_fn_from_run(workdir: str, step: int | None = None, feature: str | None = None
                      ) -> tuple[ml_collections.ConfigDict, EmbedFn, int]:
  config, method, params, state, step = load_run(workdir, step)
  variables = method.backbone_variables(params, state)
  return config, make_embed_fn(method.backbone(), variables,
                               feature or config.evaluation.feature), step
