"""frames: image MoCo of the 2D frame encoder, its data, and the checkpoint cacl loads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvssl import config as config_lib, methods, models, runs, train
from jaxvssl.methods import frames as frames_lib
from tests import helpers

FRAMES = {
  'frames.encoder': 'resnet10',
  'frames.width_multiplier': 1 / 16,
  'frames.queue_size': 16,
  'frames.embed_dim': 8,
  'frames.momentum': 0.9,
}


def test_frames_stage_trains_and_its_encoder_is_what_cacl_loads(tmp_path):
  config = helpers.tiny_config('frames', **FRAMES, num_steps=2, batch_size=4)
  method = methods.build(config, 1)
  ts = train.train_and_evaluate(
    config,
    str(tmp_path),
    devices=jax.devices()[:1],
    batches_fn=lambda s: helpers.fake_batches(config, method, s),
  )
  assert int(ts.state['queue'].pointer) == 8  # 2 steps x 4 keys
  # The query encoder (not the momentum copy), parameters and BatchNorm statistics.
  expected = method.frame_encoder_variables(ts.params, ts.state)
  loaded = frames_lib.load_frame_encoder(
    runs.load_run, str(tmp_path), encoder='resnet10', width_multiplier=1 / 16, expected=expected
  )
  assert set(loaded) == {'params', 'batch_stats'}
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, jax.device_get(expected))
  # It is the bare 2D encoder: it applies to images directly.
  out = models.get_frame_encoder('resnet10', width_multiplier=1 / 16).apply(
    loaded, jnp.zeros((2, 16, 16, 3)), train=False
  )
  assert out.shape == (2, models.feature_dim('resnet10', 1 / 16))


def test_frame_dataset_gives_two_augmentations_of_every_tenth_frame():
  from jaxvssl.tf_setup import import_tensorflow  # pylint: disable=g-import-not-at-top

  tf = import_tensorflow()
  config = helpers.tiny_config(
    'frames', **FRAMES, **{'data.frame_step': 10, 'data.num_parallel_calls': 1}
  )
  method = methods.build(config, 1)
  frames = tf.stack([tf.io.encode_jpeg(np.full([20, 20, 3], 8 * t, np.uint8)) for t in range(25)])
  source = tf.data.Dataset.from_tensor_slices(
    {
      'video': tf.stack([frames] * 4),
      'label': tf.range(4, dtype=tf.int64),
      'video_id': tf.constant(['a', 'b', 'c', 'd']),
      'num_frames': tf.fill([4], 25),
      'fps': tf.fill([4], 8.0),
    }
  )
  ds = method.train_dataset(
    global_batch_size=4, seed=0, process_index=0, process_count=1, start_step=0, source=source
  )
  batch = next(ds.as_numpy_iterator())
  assert batch['query'].shape == batch['key'].shape == (4, 16, 16, 3)
  assert set(batch['frame_index']) <= {0, 10, 20}
  assert not np.allclose(batch['query'], batch['key'])  # independent augmentations
  assert set(method.example_batch(4)) == {'query', 'key'}


def test_framewise_encoder_averages_frame_features_over_time():
  encoder = models.get_frame_encoder('resnet10', width_multiplier=1 / 16)
  module = frames_lib.FramewiseEncoder(encoder=encoder)
  clips = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 16, 16, 3))
  variables = module.init(jax.random.PRNGKey(1), clips[:, 0])
  video = module.apply(variables, clips, train=False)
  per_frame = encoder.apply(
    {k: v['encoder'] for k, v in variables.items()}, clips.reshape(6, 16, 16, 3), train=False
  ).reshape(2, 3, -1)
  np.testing.assert_allclose(video, per_frame.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_frames_config_validation_and_variants():
  with pytest.raises(config_lib.ConfigError, match=r'config\.frames\.queue_size'):
    helpers.tiny_config('frames', **{**FRAMES, 'frames.queue_size': 10})
  with pytest.raises(config_lib.ConfigError, match=r'config\.frames\.encoder'):
    helpers.tiny_config('frames', **{**FRAMES, 'frames.encoder': 'resnet9'})
  # Single RGB frames: a residual input would silently do nothing, so it is rejected.
  with pytest.raises(config_lib.ConfigError, match=r"config\.model\.input_mode='residual'"):
    helpers.tiny_config('frames', **{**FRAMES, 'model.input_mode': 'residual'})
  for variant in ('resnet50', 'tiny'):
    config = config_lib.load_config(f'configs/frames.py:{variant}')
    cacl = config_lib.load_config(
      'configs/cacl.py:sdp_vmoco_t.' + ('r3d18' if variant == 'resnet50' else 'tiny')
    )
    # The cacl configs expect exactly the encoder their frames stage trains.
    assert (cacl.cacl.frame_encoder, cacl.cacl.frame_encoder_width) == (
      config.frames.encoder,
      config.frames.width_multiplier,
    )
