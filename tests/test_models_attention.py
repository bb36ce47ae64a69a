"""Attention through jax.nn.dot_product_attention and per-stage remat (jaxvssl.models.attention).

The MViT and video-transformer outputs must equal those of the hand-written attention they used
before (kept as `reference_attention`), and remat must change neither the parameters nor the
gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import models
from jaxvssl.models import attention
from jaxvssl.models.video_transformer import VideoTransformer


def _normal(seed, shape, dtype=jnp.float32):
  return jax.random.normal(jax.random.key(seed), shape).astype(dtype)


@pytest.mark.parametrize('heads,tq,tk', [(1, 9, 9), (2, 17, 5), (4, 3, 7)])
def test_dot_product_attention_equals_hand_written(heads, tq, tk):
  q = _normal(0, (2, tq, heads, 8))
  k, v = _normal(1, (2, tk, heads, 8)), _normal(2, (2, tk, heads, 8))
  np.testing.assert_allclose(
    attention.dot_product_attention(q, k, v),
    attention.reference_attention(q, k, v),
    rtol=1e-5,
    atol=1e-6,
  )


def _with_reference_attention(monkeypatch, fn):
  """`fn()` evaluated once with jax.nn.dot_product_attention, once with the old formula."""
  new = fn()
  monkeypatch.setattr(
    attention,
    'dot_product_attention',
    lambda q, k, v, implementation=None: attention.reference_attention(q, k, v),
  )
  return new, fn()


def test_mvit_output_equals_hand_written_attention(monkeypatch):
  # Two heads at stage 1 so the head split is exercised; pooled keys make Tk < Tq.
  net = models.get_backbone('mvit_tiny', num_heads=2, embed_dim=16)
  x = _normal(3, (2, 4, 32, 32, 3))
  variables = net.init(jax.random.key(0), x)
  new, old = _with_reference_attention(monkeypatch, lambda: net.apply(variables, x))
  np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-5)


def test_video_transformer_output_equals_hand_written_attention(monkeypatch):
  net = VideoTransformer(token_dim=32, num_layers=2, num_heads=4)
  x = _normal(4, (3, 6, 12))
  variables = net.init(jax.random.key(0), x)
  new, old = _with_reference_attention(monkeypatch, lambda: net.apply(variables, x))
  np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-5)


def _grads(net, x, rng_dropout=True):
  variables = net.init({'params': jax.random.key(1), 'dropout': jax.random.key(2)}, x)

  def loss(params):
    out = net.apply(
      {**variables, 'params': params},
      x,
      train=True,
      mutable=['batch_stats'],
      rngs={'dropout': jax.random.key(3)},
    )[0]
    return jnp.mean(jnp.square(out))

  return jax.grad(loss)(variables['params'])


BACKBONES = [
  ('r3d10', dict(width_multiplier=1 / 16), (1, 2, 3, 4)),
  ('r2plus1d10', dict(width_multiplier=1 / 16), (2, 4)),
  ('c3d', dict(width_multiplier=1 / 16), (1, 2, 3, 4)),
  ('s3d', dict(width_multiplier=1 / 16), (1, 2, 3, 4)),
  ('mvit_tiny', {}, (1, 2, 3, 4)),
]


def _remat_blocks(net, x) -> int:
  """How many rematerialised (jax.checkpoint) calls the training forward pass holds."""
  variables = net.init({'params': jax.random.key(1), 'dropout': jax.random.key(2)}, x)
  fn = lambda v: net.apply(
    v, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(3)}
  )
  return str(jax.make_jaxpr(fn)(variables)).count('remat2[')  # jax.checkpoint's primitive


def _assert_same_gradients(plain, remat):
  assert jax.tree_util.tree_structure(plain) == jax.tree_util.tree_structure(remat)
  # Recomputed activations are fused differently, so float32 rounding differs; it is judged
  # against the gradient's overall scale (leaves of near-cancelling sums, e.g. LayerNorm biases,
  # are tiny and carry the same absolute rounding). A different dropout or drop-path mask, or a
  # missed stage, would differ at the scale itself.
  scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(plain))
  for a, b in zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(remat)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * scale)


@pytest.mark.parametrize('name,kwargs,stages', BACKBONES, ids=[b[0] for b in BACKBONES])
def test_remat_gives_the_same_gradients(name, kwargs, stages):
  # 16 px for MViT: a 4x4 token grid keeps its compilation to seconds.
  x = _normal(5, (2, 4, 16, 16, 3) if name.startswith('mvit') else (2, 4, 32, 32, 3))
  plain_net = models.get_backbone(name, **kwargs)
  remat_net = models.get_backbone(name, remat_stages=stages, **kwargs)
  assert _remat_blocks(plain_net, x) == 0 and _remat_blocks(remat_net, x) > 0
  _assert_same_gradients(_grads(plain_net, x), _grads(remat_net, x))


def test_video_transformer_remat_gives_the_same_gradients():
  x = _normal(6, (2, 5, 12))
  kwargs = dict(token_dim=16, num_layers=2, num_heads=2, dropout=0.1)
  remat_net = VideoTransformer(remat_stages=(1,), **kwargs)
  assert _remat_blocks(remat_net, x) == 2  # one per block
  _assert_same_gradients(_grads(VideoTransformer(**kwargs), x), _grads(remat_net, x))


def test_bad_remat_stage_and_attention_impl_are_named():
  x = jnp.zeros((1, 4, 32, 32, 3))
  with pytest.raises(ValueError, match='remat_stages'):
    models.get_backbone('r3d10', width_multiplier=1 / 16, remat_stages=(5,)).init(
      jax.random.key(0), x
    )
  with pytest.raises(ValueError, match='attention_impl'):
    models.get_backbone('mvit_tiny', attention_impl='flash').init(jax.random.key(0), x)
