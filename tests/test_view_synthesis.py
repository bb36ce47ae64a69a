"""view_synthesis (rate_order's stage): the generator and flow network, the four losses against
NumPy, the gradient routing of the two networks, info-min's two forms, configs, training (1 vs 8
devices, resume) and the paper-size smoke test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import config as config_lib, methods, objectives
from jaxvssl.errors import ConfigError
from jaxvssl.models.flow import FlowNet
from jaxvssl.models.vae import VideoVAE
from tests import helpers

# configs/view_synthesis.py:tiny shrunk to seconds per step: 4 frames, 16 px, batch 4.
SHRINK = (
  'data.num_frames=4',
  'data.stride=1',
  'data.crop_size=16',
  'model.width_multiplier=0.0625',
  'batch_size=4',
  'num_steps=2',
  'log_every_steps=1',
  'checkpoint_every_steps=1',
  'async_checkpointing=false',
  'progress_bar=false',
  'view_synthesis.generator_channels=(4,8)',
  'view_synthesis.latent_dim=2',
  'view_synthesis.flow_channels=(4,8,8)',
)


def vs_config(*overrides):
  return config_lib.load_config('configs/view_synthesis.py:tiny', SHRINK + tuple(overrides))


def _setup(*overrides):
  config = vs_config(*overrides)
  method = methods.build(config, 1)
  batch = {k: jnp.asarray(v) for k, v in next(helpers.fake_batches(config, method, seed=2)).items()}
  params, state = method.init(jax.random.PRNGKey(0), batch)
  # A flow network that does not output zeros, so that the warp and info-max terms are generic.
  params['flow'] = jax.tree_util.tree_map(
    lambda p: p + 0.05 * jax.random.normal(jax.random.PRNGKey(1), p.shape), params['flow']
  )
  return config, method, params, state, batch


# --- the networks ----------------------------------------------------------------------------


def test_generator_and_flow_network_shapes_and_ranges():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 16, 16, 3)), jnp.float32)
  mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
  g = VideoVAE(channels=(4, 8), latent_dim=3, mean=mean, std=std)
  variables = g.init({'params': jax.random.PRNGKey(0), 'latent': jax.random.PRNGKey(1)}, x)
  x_s, mu, log_var = g.apply(variables, x, rngs={'latent': jax.random.PRNGKey(2)})
  assert x_s.shape == x.shape and mu.shape == log_var.shape == (2, 5, 4, 4, 3)
  # A [0, 1] image normalised like the data.
  pixels = np.asarray(x_s) * np.asarray(std) + np.asarray(mean)
  assert pixels.min() >= 0.0 and pixels.max() <= 1.0
  # sample=False decodes the mean: deterministic; sampling differs with the rng.
  a, _, _ = g.apply(variables, x, sample=False)
  b, _, _ = g.apply(variables, x, sample=False)
  np.testing.assert_array_equal(a, b)
  c, _, _ = g.apply(variables, x, rngs={'latent': jax.random.PRNGKey(3)})
  assert not np.allclose(x_s, c)
  with pytest.raises(ValueError, match='divisible by 4'):
    g.apply(variables, x[:, :, :14, :14])

  o = FlowNet(channels=(4, 8, 8))
  flow_vars = o.init(jax.random.PRNGKey(0), x)
  flow = o.apply(flow_vars, x)
  assert flow.shape == (2, 4, 16, 16, 2)
  np.testing.assert_array_equal(flow, 0.0)  # zero-initialised output: zero flow at the start
  with pytest.raises(ValueError, match='T >= 2'):
    o.apply(flow_vars, x[:, :1])


# --- the losses -------------------------------------------------------------------------------


def _np_charbonnier(x, eps=1e-3):
  return np.sqrt(np.asarray(x, np.float64) ** 2 + eps**2)


def test_loss_terms_match_numpy_and_the_total_is_their_weighted_sum():
  config, method, params, state, batch = _setup(
    'view_synthesis.kl_weight=0.5',
    'view_synthesis.infomax_weight=2.0',
    'view_synthesis.infomin_weight=0.7',
    'view_synthesis.reconstruction_weight=0.1',
    'view_synthesis.smoothness_weight=0.3',
  )
  rng = jax.random.PRNGKey(4)
  loss, (metrics, new_state) = jax.jit(method.loss_fn)(params, state, batch, rng, 0)
  x = np.asarray(batch['clip'], np.float64)
  x_s, mu, log_var = (
    np.asarray(a, np.float64) for a in method.synthesize(params, batch['clip'], rng)
  )
  flow_x = np.asarray(method.flow(params['flow'], batch['clip']), np.float64)
  flow_s = np.asarray(method.flow(params['flow'], jnp.asarray(x_s, jnp.float32)), np.float64)
  # Eq. 13: frame t + 1 warped by the flow onto frame t (objectives.warp_with_flow is tested
  # against a hand-written bilinear sampler in test_objectives_synthesis.py).
  b, t = x.shape[:2]
  warped = np.asarray(
    objectives.warp_with_flow(
      jnp.asarray(x[:, 1:].reshape((-1,) + x.shape[2:]), jnp.float32),
      jnp.asarray(flow_x.reshape((-1,) + flow_x.shape[2:]), jnp.float32),
    )
  ).reshape(x[:, 1:].shape)
  photometric = _np_charbonnier(warped - x[:, :-1]).mean()
  kl = (0.5 * (mu**2 + np.exp(log_var) - log_var - 1)).reshape(b, -1).sum(-1).mean() / mu[0].size
  infomax = _np_charbonnier(flow_s - flow_x).mean()
  features = lambda clips: np.asarray(
    method.features(state['infomin_encoder'], jnp.asarray(clips, jnp.float32)), np.float64
  )
  fx, fs = features(x), features(x_s)
  cos = np.mean(np.sum(fx * fs, -1) / np.linalg.norm(fx, axis=-1) / np.linalg.norm(fs, axis=-1))
  reconstruction = _np_charbonnier(x_s - x).mean()
  smooth = 0.5 * (
    _np_charbonnier(np.diff(flow_x, axis=3)).mean()
    + _np_charbonnier(np.diff(flow_x, axis=2)).mean()
  )
  expected = dict(
    photometric_loss=photometric,
    kl_loss=kl,
    infomax_loss=infomax,
    infomin_loss=cos,  # 'text': minimise +cos
    reconstruction_loss=reconstruction,
    smoothness_loss=smooth,
    synthetic_cosine=cos,
  )
  for key, value in expected.items():
    np.testing.assert_allclose(float(metrics[key]), value, rtol=2e-4, atol=1e-6, err_msg=key)
  total = photometric + 0.5 * kl + 2.0 * infomax + 0.7 * cos + 0.1 * reconstruction + 0.3 * smooth
  np.testing.assert_allclose(float(loss), total, rtol=2e-4)
  # The frozen extractor is state and comes back unchanged.
  jax.tree_util.tree_map(np.testing.assert_array_equal, new_state, state)
  # Eq. 16 as written is the negative: the most similar view is optimal.
  _, (eq_metrics, _) = jax.jit(vs_config_method('view_synthesis.infomin_form=equation').loss_fn)(
    params, state, batch, rng, 0
  )
  np.testing.assert_allclose(float(eq_metrics['infomin_loss']), -cos, rtol=2e-4)


def vs_config_method(*overrides):
  return methods.build(vs_config(*overrides), 1)


def test_each_network_gets_only_its_own_losses_gradient():
  """O: the photometric (and smoothness) gradient only; G: KL + info-max + info-min +
  reconstruction only. One optimizer over both is then two independent ones (module docstring)."""
  _, method, params, state, batch = _setup('view_synthesis.smoothness_weight=0.5')
  rng = jax.random.PRNGKey(5)

  def grads(*weights_overrides):
    m = vs_config_method('view_synthesis.smoothness_weight=0.5', *weights_overrides)
    return jax.jit(jax.grad(lambda p: m.loss_fn(p, state, batch, rng, 0)[0]))(params)

  total = grads()
  flow_only = grads(
    'view_synthesis.kl_weight=0',
    'view_synthesis.infomax_weight=0',
    'view_synthesis.infomin_weight=0',
    'view_synthesis.reconstruction_weight=0',
  )
  generator_only = grads(
    'view_synthesis.photometric_weight=0', 'view_synthesis.smoothness_weight=0'
  )
  close = lambda a, b: jax.tree_util.tree_map(
    lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-8), a, b
  )
  close(total['flow'], flow_only['flow'])
  close(total['generator'], generator_only['generator'])
  zero = lambda tree: all(not np.any(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(tree))
  assert zero(generator_only['flow'])  # info-max does not train O
  assert zero(flow_only['generator'])
  assert not zero(total['flow']) and not zero(total['generator'])


# --- configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
  'override, key',
  [
    ('model.input_mode=residual', r'model\.input_mode'),
    ('view_synthesis.infomin_form=literal', r'view_synthesis\.infomin_form'),
    ('view_synthesis.generator_channels=(4,8,8,8,8)', r'view_synthesis\.generator_channels.*by 32'),
    ('view_synthesis.flow_channels=()', r'view_synthesis\.flow_channels'),
    ('view_synthesis.temporal_kernel=2', r'view_synthesis\.temporal_kernel'),
    ('view_synthesis.kl_weight=-1.0', r'view_synthesis\.kl_weight'),
    ('view_synthesis.charbonnier_eps=0.0', r'view_synthesis\.charbonnier_eps'),
  ],
)
def test_config_validation_names_the_key(override, key):
  with pytest.raises(ConfigError, match=key):
    vs_config(override)


def test_variants():
  tiny = config_lib.load_config('configs/view_synthesis.py:tiny')
  assert tiny.model.input_mode == 'rgb' and tiny.data.name == 'synthetic_motion/default'
  assert (tiny.data.num_frames, tiny.data.crop_size) == (8, 32)
  assert tuple(tiny.view_synthesis.generator_channels) == (16, 32)
  # rate_order's tiny generator is this stage's (checked again when rate_order loads the run).
  ro = config_lib.load_config('configs/rate_order.py:tiny').rate_order
  assert tuple(ro.generator_channels) == tuple(tiny.view_synthesis.generator_channels)
  assert (ro.latent_dim, ro.temporal_kernel) == (
    tiny.view_synthesis.latent_dim,
    tiny.view_synthesis.temporal_kernel,
  )
  paper = config_lib.load_config('configs/view_synthesis.py:paper')
  assert (paper.data.num_frames, paper.data.crop_size, paper.batch_size) == (16, 112, 16)
  assert paper.view_synthesis.infomin_form == 'text'
  assert paper.view_synthesis.charbonnier_eps == 1e-3
  ro_paper = config_lib.load_config('configs/rate_order.py:r2plus1d18').rate_order
  assert tuple(ro_paper.generator_channels) == tuple(paper.view_synthesis.generator_channels)


# --- training ---------------------------------------------------------------------------------


def test_tiny_trains_with_finite_losses(tmp_path):
  helpers.run_training(vs_config(), tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in ('loss', 'photometric_loss', 'kl_loss', 'infomax_loss', 'infomin_loss'):
      assert np.isfinite(record[key]), key


@pytest.mark.slow
def test_8_devices_equal_1_device_and_resume_is_exact(tmp_path):
  """Slow: four train-loop runs (1 device, 8 devices, interrupted + resumed)."""
  config = vs_config('batch_size=8', 'num_steps=3')
  # Adam: reassociation noise of near-zero gradients over 8 shards becomes lr-sized steps, so
  # the parameters are compared loosely; the losses are the test.
  keys = ('loss', 'photometric_loss', 'kl_loss', 'infomax_loss', 'infomin_loss')
  helpers.check_devices_and_resume(config, tmp_path, keys, rtol=1e-2, atol=1e-2)


@pytest.mark.slow
def test_paper_size_two_steps_on_cpu(tmp_path):
  """2 steps of configs/view_synthesis.py:paper (16 x 112 x 112, R(2+1)D-18 extractor) at batch 2."""
  config = config_lib.load_config(
    'configs/view_synthesis.py:paper',
    (
      'batch_size=2',
      'num_steps=2',
      'log_every_steps=1',
      'checkpoint_every_steps=2',
      'async_checkpointing=false',
      'progress_bar=false',
    ),
  )
  helpers.run_training(config, tmp_path, jax.devices()[:1])
  records = helpers.logged_steps(tmp_path)
  assert sorted(records) == [1, 2]
  for record in records.values():
    for key in ('loss', 'photometric_loss', 'kl_loss', 'infomax_loss', 'infomin_loss'):
      assert np.isfinite(record[key]), key
