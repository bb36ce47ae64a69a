"""The train state: what a checkpoint holds and how a run's first state is made."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxvssl.methods import base


@flax.struct.dataclass
class TrainState:
  """Everything a restart needs. `params` are what the optimizer updates; `state` is the rest."""

  step: jax.Array
  params: Any
  opt_state: Any
  state: Any
  rng: jax.Array


def init_train_state(
  method: base.Method, tx: optax.GradientTransformation, batch: dict[str, jax.Array], seed: int
) -> TrainState:
  """Initialises the method's params and state for `batch`'s shapes (jit-able; no file access)."""
  rng = jax.random.PRNGKey(seed)
  init_rng, train_rng = jax.random.split(rng)
  params, state = method.init(init_rng, batch)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=tx.init(params),
    state=state,
    rng=train_rng,
  )


def abstract_train_state(
  method: base.Method, tx: optax.GradientTransformation, batch: dict[str, Any], seed: int
) -> TrainState:
  """The shapes and dtypes of `init_train_state` (nothing is computed): a restore target."""
  return jax.eval_shape(lambda b: init_train_state(method, tx, b, seed), batch)


def load_pretrained(
  method: base.Method,
  tx: optax.GradientTransformation,
  ts: TrainState,
  load_run: base.LoadRun,
) -> TrainState:
  """`ts` with the method's pretrained variables in place (`Method.load_pretrained`), then the
  backbone from `config.init_from` when set (`methods.base.load_init_from`).

  Runs outside jit, once, on a fresh start. When the hook replaced trainable parameters, the
  optimizer state is rebuilt for them (its slots are zeros of the same shapes either way).
  """
  params, state = method.load_pretrained(ts.params, ts.state, load_run)
  params, state = base.load_init_from(method, params, state, load_run)
  opt_state = ts.opt_state if params is ts.params else tx.init(params)
  return ts.replace(params=params, opt_state=opt_state, state=state)
