"""The device half of the input pipeline (jaxvssl.inputs.device) against the host path.

The same in-memory videos as tests/test_inputs_pipeline.py. With float32 transfer the device's
augmentation must equal the host's (same draws, same ops) to float rounding; with uint8 transfer
the difference is the rounding of the pixels to 1/255.
"""

import itertools

import jax
import numpy as np
import pytest

from jaxvssl.inputs import data_config, device, input_checks, pipeline
from jaxvssl.inputs import views as V
from jaxvssl.tf_setup import import_tensorflow
from tests.test_inputs_pipeline import make_cfg, make_source

tf = import_tensorflow()

# Every photometric op on often, so a few batches cover each flag both ways.
PHOTOMETRIC = dict(flip_prob=0.5, color_jitter_prob=0.8, grayscale_prob=0.3, blur_prob=0.5)
VIEWS = (
  V.ViewSpec('query', 4, 2, temporal_group=0, augment_group=0),
  V.ViewSpec('key', 4, 2, augment_group=1),
)
# Pixels rounded to 1/255 and divided by the smallest std: the uint8 transfer's error bound.
UINT8_ATOL = 0.5 / 255 / min(data_config.default_data_config().std) + 1e-4


def _batches(n=4, batch=4, **cfg):
  ds = pipeline.make_train_dataset(
    make_cfg(photometric=True, **{**PHOTOMETRIC, **cfg}),
    VIEWS,
    global_batch_size=batch,
    seed=5,
    source=make_source(),
    device_transfer=True,
  )
  return list(itertools.islice(ds.as_numpy_iterator(), n))


def _prepared(batches, **cfg):
  data_cfg = make_cfg(photometric=True, **{**PHOTOMETRIC, **cfg})
  fn = jax.jit(lambda b: device.prepare_batch(b, data_cfg))
  return [jax.device_get(fn(b)) for b in batches]


def test_device_augment_equals_host_augment():
  host = _batches()
  dev = _batches(device_augment=True)
  assert dev[0]['query'].dtype == np.float32
  assert dev[0]['augment/query'].shape == (4, device.NUM_PARAMS)
  params = np.concatenate([b[f'augment/{v}'] for b in dev for v in ('query', 'key')])
  cols = {name: params[:, i] for i, name in enumerate(device.PARAM_NAMES)}
  for flag in ('flip', 'jitter', 'grayscale', 'blur'):  # both branches of every op are tested
    assert 0 < cols[flag].sum() < len(params), flag
  for h, d in zip(host, _prepared(dev, device_augment=True)):
    assert set(d) == set(h)
    for key in ('query', 'key'):
      np.testing.assert_allclose(d[key], h[key], atol=2e-4, err_msg=key)
    np.testing.assert_array_equal(d['label'], h['label'])


def test_uint8_transfer_normalises_on_device():
  host = _batches(n=2)
  dev = _batches(n=2, transfer_dtype='uint8')
  assert dev[0]['query'].dtype == np.uint8 and 'augment/query' not in dev[0]
  for h, d in zip(host, _prepared(dev, transfer_dtype='uint8')):
    for key in ('query', 'key'):
      assert d[key].dtype == np.float32
      np.testing.assert_allclose(d[key], h[key], atol=UINT8_ATOL, err_msg=key)


def test_uint8_transfer_with_device_augment_stays_close_to_the_host_path():
  host = _batches(n=2)
  cfg = dict(transfer_dtype='uint8', device_augment=True)
  dev = _batches(n=2, **cfg)
  assert dev[0]['query'].dtype == np.uint8
  for h, d in zip(host, _prepared(dev, **cfg)):
    for key in ('query', 'key'):
      # The crop is rounded before the jitter, whose factors (<= 1.4 each) can enlarge the
      # rounding; the mean stays at the rounding's scale.
      assert np.mean(np.abs(d[key] - h[key])) < UINT8_ATOL, key
      np.testing.assert_allclose(d[key], h[key], atol=8 * UINT8_ATOL, err_msg=key)


@pytest.mark.parametrize('crop', ['random', 'random_resized'])
def test_decode_crop_equals_decode_then_crop(crop):
  full = _batches(n=2, crop=crop)
  window = _batches(n=2, crop=crop, decode_crop=True)
  for a, b in zip(full, window):
    for key in ('query', 'key'):
      np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)


def test_random_decode_crop_of_small_frames_falls_back_to_whole_frames(monkeypatch):
  # The test frames are 32x40: a 36 px 'random' crop upsamples whole frames first (and says so).
  monkeypatch.setattr(input_checks, '_warned', set())  # each cause warns once per process
  with pytest.warns(input_checks.InputWarning, match='training crops are larger than the frames'):
    full = _batches(n=1, crop='random', crop_size=36)
    window = _batches(n=1, crop='random', crop_size=36, decode_crop=True)
  np.testing.assert_allclose(full[0]['query'], window[0]['query'], atol=1e-5)


def test_frame_dataset_device_augment_equals_host():
  def frames(**cfg):
    ds = pipeline.make_frame_dataset(
      make_cfg(photometric=True, **{**PHOTOMETRIC, **cfg}),
      global_batch_size=4,
      seed=2,
      frame_step=3,
      source=make_source(),
      device_transfer=True,
    )
    return list(itertools.islice(ds.as_numpy_iterator(), 2))

  host = frames()
  dev = frames(device_augment=True)
  assert dev[0]['augment/key'].shape == (4, device.NUM_PARAMS)
  for h, d in zip(host, _prepared(dev, device_augment=True)):
    for key in ('query', 'key'):
      np.testing.assert_allclose(d[key], h[key], atol=2e-4, err_msg=key)


def test_hue_matches_tensorflow():
  x = np.random.default_rng(0).uniform(size=(2, 5, 6, 3)).astype(np.float32)
  x[0, 0, 0] = 0.5  # a grey pixel: no hue
  for delta in (-0.5, -0.1, 0.0, 0.37):
    want = np.clip(tf.image.adjust_hue(x, delta).numpy(), 0, 1)
    np.testing.assert_allclose(device.adjust_hue(x, delta), want, atol=1e-5)


def test_prepare_batch_passes_normalised_float_views_through():
  batch = {'query': np.ones((2, 3, 4, 4, 3), np.float32), 'label': np.zeros(2, np.int32)}
  out = device.prepare_batch(batch, make_cfg())
  assert out['query'] is batch['query'] and out['label'] is batch['label']


def test_prefetch_puts_batches_ahead_in_order():
  put = []

  def fake_put(x):
    put.append(x)
    return x * 10

  it = device.prefetch(iter(range(5)), 2, fake_put)
  assert next(it) == 0 and put == [0, 1]  # one yielded, the next one already put
  assert next(it) == 10 and put == [0, 1, 2]
  assert list(it) == [20, 30, 40]
  assert list(device.prefetch(iter(range(3)), 0, lambda x: x)) == [0, 1, 2]


def test_without_device_transfer_the_host_normalises_whatever_the_config_says():
  # BatchNorm re-estimation and finetuning read training clips without prepare_batch.
  host = _batches(n=1)
  ds = pipeline.make_train_dataset(
    make_cfg(photometric=True, **PHOTOMETRIC, transfer_dtype='uint8', device_augment=True),
    VIEWS,
    global_batch_size=4,
    seed=5,
    source=make_source(),
  )
  other = next(ds.as_numpy_iterator())
  assert set(other) == set(host[0])
  np.testing.assert_array_equal(other['query'], host[0]['query'])
