"""Tests of jaxvssl.models.video_transformer: CACL's transformer and the frozen frame encoder."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl.models import FrameEncoderTransformer, VideoTransformer, get_frame_encoder
from tests.test_models import abstract_init_with_output, numpy_variables


def test_video_transformer_shapes_and_sizes():
  feats = jnp.zeros((2, 32, 2048))
  cacl = VideoTransformer()  # 768-d, 6 layers, 6 heads
  out, variables = abstract_init_with_output(cacl, feats)
  assert out.shape == (2, 768)
  p = variables['params']
  assert p['pos_embed'].shape == (1, 33, 768) and p['embed']['kernel'].shape == (2048, 768)
  assert len([k for k in p if k.startswith('block')]) == 6
  tiny = VideoTransformer(token_dim=32, num_layers=2, num_heads=2)
  out, variables = abstract_init_with_output(tiny, feats[:, :, :64])
  assert out.shape == (2, 32)
  with pytest.raises(ValueError, match='initialised for 32 tokens but the input has S=16'):
    jax.eval_shape(lambda v: tiny.apply(v, feats[:, :16, :64]), variables)


def test_frozen_frame_encoder_gets_no_gradient():
  encoder = get_frame_encoder('resnet10', width_multiplier=1 / 16)
  frames = jnp.asarray(np.random.default_rng(3).normal(size=(2, 3, 16, 16, 3)), jnp.float32)
  encoder_vars = numpy_variables(encoder, frames[0], train=False)
  model = FrameEncoderTransformer(encoder, VideoTransformer(32, 2, 2))
  variables = numpy_variables(model, frames, encoder_vars)
  assert set(variables) == {'params'} and set(variables['params']) == {'transformer'}

  def loss(params, enc_vars):
    return jnp.sum(model.apply({'params': params}, frames, enc_vars, train=True) ** 2)

  grads, enc_grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables['params'], encoder_vars)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(enc_grads))
  assert any(float(jnp.abs(g).max()) > 0.0 for g in jax.tree.leaves(grads))


def _cosine(a, b):
  a, b = np.asarray(a), np.asarray(b)
  return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_mean_pool_is_the_mean_of_the_frame_tokens_and_depends_on_the_input_at_init():
  rng = np.random.default_rng(0)
  feats = jnp.asarray(rng.normal(size=(2, 16, 64)), jnp.float32)  # two unrelated clips
  cls_net = VideoTransformer(token_dim=64, num_layers=2, num_heads=2)
  mean_net = VideoTransformer(token_dim=64, num_layers=2, num_heads=2, pool='mean')
  variables = cls_net.init(jax.random.key(0), feats)  # the same parameters serve both
  cls_out = cls_net.apply(variables, feats)
  mean_out = mean_net.apply(variables, feats)
  # 'mean' = the mean over the S output tokens (after the final LayerNorm), not the CLS token.
  tokens = {}

  def keep_tokens(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.module.name == 'norm':
      tokens['x'] = out
    return out

  with nn.intercept_methods(keep_tokens):
    mean_net.apply(variables, feats)
  np.testing.assert_allclose(mean_out, np.mean(tokens['x'][:, 1:], axis=1), rtol=1e-6)
  np.testing.assert_allclose(cls_out, tokens['x'][:, 0], rtol=1e-6)
  # At init the CLS output is nearly the same for two unrelated inputs (why 'mean' exists);
  # the mean of the frame tokens is not.
  assert _cosine(cls_out[0], cls_out[1]) > 0.9
  assert _cosine(mean_out[0], mean_out[1]) < 0.5
  with pytest.raises(ValueError, match="pool='max'"):
    VideoTransformer(token_dim=64, num_layers=1, num_heads=2, pool='max').init(
      jax.random.key(0), feats
    )
