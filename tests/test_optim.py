"""jaxvssl.optim: the default optimizer chain and per-subtree learning-rate multipliers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvssl import optim
from jaxvssl.errors import ConfigError
from tests import helpers


def _params():
  rng = np.random.default_rng(0)
  return {
    'backbone': {'kernel': jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)},
    'transformer': {
      'kernel': jnp.asarray(rng.normal(size=(4, 2)), jnp.float32),
      'bias': jnp.asarray(rng.normal(size=(2,)), jnp.float32),
    },
  }


def _grads(step):
  rng = np.random.default_rng([1, step])
  return jax.tree_util.tree_map(
    lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), _params()
  )


def _run(tx, steps=4):
  """Params after `steps` updates with fixed gradients (momentum and weight decay in play)."""
  params = _params()
  state = tx.init(params)
  for step in range(steps):
    updates, state = tx.update(_grads(step), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def _config(name='sgd', **multipliers):
  overrides = {'optim.name': name, 'optim.weight_decay': 1e-2, 'optim.warmup_steps': 0}
  overrides.update({f'optim.lr_multipliers.{k}': v for k, v in multipliers.items()})
  config = helpers.tiny_config('moco')
  config.unlock()
  for key, value in overrides.items():
    *path, last = key.split('.')
    node = config
    for p in path:
      node = node[p]
    node[last] = value
  return config


def test_without_multipliers_the_chain_is_the_plain_one():
  config = _config()
  plain = optax.chain(
    optax.add_decayed_weights(1e-2, mask=optim._decay_mask),
    optax.sgd(optim.make_schedule(config), momentum=0.9),
  )
  got, state = _run(optim.make_optimizer(config))
  want, want_state = _run(plain)
  jax.tree_util.tree_map(np.testing.assert_array_equal, got, want)
  # The same optimizer state structure: checkpoints of earlier runs still restore.
  assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(want_state)


@pytest.mark.parametrize('name', ['sgd', 'adamw'])
def test_multiplier_scales_the_named_subtree_like_its_own_learning_rate(name):
  """A multiplier m on 'transformer' == that subtree trained alone with lr * m."""
  base = _config(name)
  scaled = _config(name, transformer=0.1)
  got, _ = _run(optim.make_optimizer(scaled))
  full, _ = _run(optim.make_optimizer(base))
  np.testing.assert_array_equal(got['backbone']['kernel'], full['backbone']['kernel'])
  # Reference: the same optimizer with a 10x smaller base learning rate, for that subtree.
  slow = _config(name)
  slow.optim.base_learning_rate = base.optim.base_learning_rate * 0.1
  want, _ = _run(optim.make_optimizer(slow))
  for leaf in ('kernel', 'bias'):
    np.testing.assert_allclose(
      got['transformer'][leaf], want['transformer'][leaf], rtol=1e-6, atol=1e-7
    )
    assert not np.allclose(got['transformer'][leaf], full['transformer'][leaf])


def test_multiplier_zero_freezes_and_unknown_names_fail():
  frozen, _ = _run(optim.make_optimizer(_config(transformer=0.0)))
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, frozen['transformer'], _params()['transformer']
  )
  with pytest.raises(
    ConfigError, match=r"lr_multipliers\.transfomer: .*\['backbone', 'transformer'\]"
  ):
    optim.make_optimizer(_config(transfomer=0.1)).init(_params())
