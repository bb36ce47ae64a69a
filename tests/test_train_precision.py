"""bf16 compute, uint8 batches and device prefetch in the training step and loop (CPU, tiny)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import methods, optim, train
from jaxvssl import state as state_lib
from jaxvssl.inputs import device
from tests import helpers
from tests.test_methods_mlfo import tiny_config as mlfo_config
from tests.test_methods_scvrl import tiny_config as scvrl_config


def _step(config, batch):
  """(loss, new train state) of one jitted train step from the seed-0 init."""
  method = methods.build(config, 1)
  tx, schedule = optim.make_optimizer(config), optim.make_schedule(config)
  prepare = lambda b: device.prepare_batch(b, config.data)
  init = jax.jit(lambda b: state_lib.init_train_state(method, tx, prepare(b), seed=0))
  step = jax.jit(train.make_train_step(method, tx, schedule, prepare))
  ts, metrics = step(init(batch), batch)
  return float(metrics['loss']), ts


def _batch(config):
  method = methods.build(config, 1)
  return next(helpers.fake_batches(config, method))


CONFIGS = {
  'moco_r3d': lambda *o: helpers.tiny_config(**dict(x.split('=') for x in o)),
  'scvrl_mvit': scvrl_config,  # MViT: bf16 attention
  'mlfo': mlfo_config,  # Sinkhorn with a queue
}


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_bf16_step_is_finite_close_to_float32_and_keeps_float32_state(name):
  make = CONFIGS[name]
  f32 = make()
  bf16 = make('model.dtype=bfloat16')
  batch = _batch(f32)
  loss32, _ = _step(f32, batch)
  loss16, ts = _step(bf16, batch)
  assert np.isfinite(loss16)
  # bf16 keeps 8 mantissa bits (relative rounding up to 2^-9 per op). The contrastive losses
  # divide cosines by a temperature (0.1 in the tiny MoCo: x10), so a cosine off by ~0.005
  # moves the loss by a few hundredths; measured: 5.2 % (MoCo), less for MLFO and SCVRL.
  np.testing.assert_allclose(loss16, loss32, rtol=0.1)
  # Parameters, optimizer state and every statistic (BN, queues, momentum encoders) stay float32.
  floats = [
    leaf.dtype
    for leaf in jax.tree_util.tree_leaves((ts.params, ts.opt_state, ts.state))
    if jnp.issubdtype(leaf.dtype, jnp.floating)
  ]
  assert floats and set(floats) == {jnp.dtype(jnp.float32)}


def test_uint8_batch_gives_the_same_step_as_the_host_normalised_batch():
  config = helpers.tiny_config(**{'data.transfer_dtype': 'uint8'})
  rng = np.random.default_rng(0)
  pixels = {
    key: rng.integers(0, 256, size=value.shape, dtype=np.uint8)
    for key, value in _batch(config).items()
    if key != 'label'
  }
  mean, std = np.asarray(config.data.mean), np.asarray(config.data.std)
  floats = {k: ((v / 255.0 - mean) / std).astype(np.float32) for k, v in pixels.items()}
  loss_u8, ts_u8 = _step(config, pixels)
  loss_f32, ts_f32 = _step(config, floats)
  np.testing.assert_allclose(loss_u8, loss_f32, rtol=1e-5)
  # The device normalises in float32 (XLA may fuse (x/255 - mean)/std into one multiply-add),
  # the reference in float64: rounding-level differences, amplified by BatchNorm over 8 clips.
  helpers.assert_train_states_equal(ts_u8, ts_f32, rtol=1e-3, atol=1e-5)


def test_device_prefetch_changes_no_loss(tmp_path):
  def losses(workdir, prefetch):
    config = helpers.tiny_config(num_steps=3, **{'data.device_prefetch': prefetch})
    helpers.run_training(config, workdir, jax.devices()[:1])
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      return [r['loss'] for r in map(json.loads, f) if 'loss' in r]

  assert losses(tmp_path / 'none', 0) == losses(tmp_path / 'two', 2)
