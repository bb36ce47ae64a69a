"""Tests of jaxvssl.models.heads."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxvssl.models import MLPHead
from tests.test_models import abstract_init_with_output, numpy_variables


def test_mlp_heads():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(4, 1024)), jnp.float32)
  linear = MLPHead(hidden_dims=(), out_dim=128)
  out, v = abstract_init_with_output(linear, x)
  assert out.shape == (4, 128) and set(v['params']) == {'out'}
  mlp = MLPHead(hidden_dims=(2048,), out_dim=128, use_bn=True)
  out, v = abstract_init_with_output(mlp, x)
  assert out.shape == (4, 128) and 'batch_stats' in v
  # Per-timestep head on [B, T, C] (MLFO's 1x1x1-conv MLP).
  out, _ = abstract_init_with_output(MLPHead((64,), 128), jnp.zeros((4, 8, 64)))
  assert out.shape == (4, 8, 128)
  # Dropout is active only in training.
  cls = MLPHead(hidden_dims=(512,), out_dim=16, dropout=0.5)
  v = numpy_variables(cls, x)
  rngs = {'dropout': jax.random.key(0, impl='rbg')}
  apply = jax.jit(
    lambda v, x, k: (cls.apply(v, x, train=True, rngs={'dropout': k}), cls.apply(v, x, train=False))
  )
  train_out, eval_out = apply(v, x, rngs['dropout'])
  assert train_out.shape == eval_out.shape == (4, 16)
  assert not np.allclose(train_out, eval_out)
