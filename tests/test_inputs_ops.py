"""Tests of jaxvssl.inputs.ops: temporal sampling, augmentation consistency, determinism."""

import math

import numpy as np
import pytest
from scipy import stats

from jaxvssl.inputs import ops
from jaxvssl.tf_setup import import_tensorflow

tf = import_tensorflow()


def _seed(i, j=0):
  return tf.constant([i, j], tf.int64)


def _many(fn, n, base=0):
  """Evaluates `fn(seed)` for n seeds inside one tf.data graph (fast)."""
  ds = tf.data.Dataset.range(n).map(lambda i: fn(tf.stack([tf.constant(base, tf.int64), i])))
  return np.stack(list(ds.batch(n).as_numpy_iterator()))[0]


# --- temporal ---------------------------------------------------------------------------------


def test_sample_clip_indices_contiguous_strided_and_starts_cover_range():
  idx = _many(lambda s: ops.sample_clip_indices(20, 4, 3, seed=s), 400)
  assert idx.shape == (400, 4) and idx.dtype == np.int32
  np.testing.assert_array_equal(np.diff(idx, axis=1), 3)
  # span 10 in a 20-frame video: starts 0..10, all reached, none beyond.
  assert set(idx[:, 0].tolist()) == set(range(11))
  np.testing.assert_array_equal(
    ops.sample_clip_indices(20, 4, 3, start=tf.constant(5)).numpy(), [5, 8, 11, 14]
  )


def test_short_video_pad_modes():
  loop = ops.sample_clip_indices(5, 4, 2, start=tf.constant(0), pad_mode='loop').numpy()
  clamp = ops.sample_clip_indices(5, 4, 2, start=tf.constant(0), pad_mode='clamp').numpy()
  np.testing.assert_array_equal(loop, [0, 2, 4, 1])
  np.testing.assert_array_equal(clamp, [0, 2, 4, 4])
  with pytest.raises(ValueError, match='pad_mode'):
    ops.wrap_indices(tf.constant([1]), 3, 'mirror')


def test_eval_clip_starts_uniform_and_covering():
  starts = ops.eval_clip_starts(100, 5, 16).numpy()
  np.testing.assert_array_equal(starts, [0, 21, 42, 63, 84])  # last clip ends at frame 99
  assert ops.eval_clip_starts(100, 1, 16).numpy().tolist() == [42]
  assert ops.eval_clip_starts(10, 3, 16).numpy().tolist() == [0, 0, 0]
  idx = ops.eval_clip_indices(10, 2, 4, 4, pad_mode='clamp').numpy()
  np.testing.assert_array_equal(idx, [[0, 4, 8, 9], [0, 4, 8, 9]])


def _softmax(x):
  x = np.asarray(x, np.float64)
  e = np.exp(x - x.max())
  return e / e.sum()


@pytest.mark.parametrize('beta', [0.5, math.inf])
def test_targeted_start_follows_softmax(beta):
  # 200 frames at 10 fps: 20 one-second windows; clip span 9, so the window
  # of the clip centre (start + 4) is recoverable exactly from the start.
  scores = np.array(
    [0, 2, 0.5, 3, 1, 0, 0, 2.5, 1, 0, 0, 1.5, 0, 0, 3, 0, 0.2, 1, 0, 2], np.float32
  )
  n = 3000
  starts = _many(lambda s: ops.targeted_start(200, 9, tf.constant(scores), 10.0, beta, s), n)
  windows = (starts + 4) // 10
  counts = np.bincount(windows, minlength=20)
  expected = n * (np.full(20, 1 / 20) if math.isinf(beta) else _softmax(scores / beta))
  _, p = stats.chisquare(counts, expected)
  assert p > 1e-3, (counts, expected.round())
  # The test can fail: the other beta's distribution is rejected.
  other = np.full(20, n / 20) if not math.isinf(beta) else n * _softmax(scores / 0.5)
  assert stats.chisquare(counts, other)[1] < 1e-6


def test_targeted_start_without_scores_is_uniform_start():
  starts = _many(lambda s: ops.targeted_start(30, 10, tf.zeros([0]), 10.0, 5.0, s), 300)
  assert starts.min() == 0 and starts.max() == 20


def test_temporal_jitter_bounded_sorted():
  base = tf.constant([2, 6, 10, 14], tf.int32)
  out = _many(lambda s: ops.temporal_jitter(base, 2, 16, s), 200)
  assert np.all(np.abs(out - base.numpy()) <= 2)
  assert np.all(np.diff(out, axis=1) >= 0)
  assert len({tuple(r) for r in out}) > 10
  assert ops.temporal_jitter(base, 0, 16, _seed(1)) is base


def test_non_identity_permutation():
  perms = _many(lambda s: ops.non_identity_permutation(2, s), 50)
  np.testing.assert_array_equal(perms, np.tile([1, 0], (50, 1)))
  perms = _many(lambda s: ops.non_identity_permutation(5, s), 100)
  np.testing.assert_array_equal(np.sort(perms, axis=1), np.tile(np.arange(5), (100, 1)))


# --- spatial: one draw per clip ----------------------------------------------------------------


def _static_clip(t=4, h=20, w=24, seed=0):
  """A clip whose frames are all the same random image."""
  frame = np.random.default_rng(seed).uniform(size=(h, w, 3)).astype(np.float32)
  return tf.constant(np.repeat(frame[None], t, axis=0))


AUGMENTS = {
  'crop': lambda x, s: ops.random_resized_crop(x, s, 12, (0.2, 1.0), (0.5, 2.0)),
  'flip': lambda x, s: ops.random_flip(x, s, 0.5),
  'jitter': lambda x, s: ops.color_jitter(x, s, (0.4, 0.4, 0.4, 0.1), 1.0, True),
  'gray': lambda x, s: ops.random_grayscale(x, s, 0.5),
  'blur': lambda x, s: ops.random_gaussian_blur(x, s, 1.0, (0.1, 2.0)),
}


@pytest.mark.parametrize('name', sorted(AUGMENTS))
def test_augment_same_on_every_frame_and_independent_of_length(name):
  fn = AUGMENTS[name]
  outs = []
  for i in range(6):
    long = fn(_static_clip(5), _seed(i)).numpy()
    short = fn(_static_clip(2), _seed(i)).numpy()
    # identical frames stay identical: parameters are drawn once per clip ...
    np.testing.assert_allclose(long, np.repeat(long[:1], 5, axis=0), atol=1e-6)
    # ... and do not depend on the number of frames (views share draws).
    np.testing.assert_allclose(short[0], long[0], atol=1e-6)
    outs.append(long[0])
  # The op is random: the six seeds do not all give the same output.
  assert any(not np.allclose(outs[0], o) for o in outs[1:])


def test_random_resized_crop_box_ranges():
  # x-ramp in R: the crop's R range tells its width fraction.
  h, w = 40, 40
  ramp = np.broadcast_to(np.linspace(0, 1, w, dtype=np.float32)[None, :, None], (1, h, w, 3))
  for i in range(20):
    out = ops.random_resized_crop(tf.constant(ramp), _seed(i), 16, (0.25, 0.5), (1.0, 1.0)).numpy()
    width_frac = (out[0, 0, -1, 0] - out[0, 0, 0, 0]) * (w - 1) / w
    assert 0.4 <= width_frac <= 0.75, width_frac


def test_center_and_three_crop_positions():
  w = 30
  ramp = np.broadcast_to(np.arange(w, dtype=np.float32)[None, None, :, None], (2, 10, w, 3))
  three = ops.three_crop(tf.constant(ramp), 10).numpy()
  assert three.shape == (3, 2, 10, 10, 3)
  assert [three[k, 0, 0, 0, 0] for k in range(3)] == [0, 10, 20]
  assert ops.center_crop(tf.constant(ramp), 10).numpy()[0, 0, 0, 0] == 10
  portrait = np.transpose(ramp, (0, 2, 1, 3))
  assert [ops.three_crop(tf.constant(portrait), 10).numpy()[k, 0, 0, 0, 0] for k in range(3)] == [
    0,
    10,
    20,
  ]


def test_flip_reverses_width():
  x = tf.reshape(tf.range(6, dtype=tf.float32), [1, 1, 6, 1])
  assert ops.random_flip(x, _seed(0), 1.0).numpy().ravel().tolist() == [5, 4, 3, 2, 1, 0]
  assert ops.random_flip(x, _seed(0), 0.0).numpy().ravel().tolist() == [0, 1, 2, 3, 4, 5]


def test_color_ops_semantics():
  x = _static_clip(1)
  np.testing.assert_allclose(ops.color_jitter(x, _seed(0), prob=0.0).numpy(), x.numpy())
  np.testing.assert_allclose(ops.adjust_brightness(x, 1.0).numpy(), x.numpy(), atol=1e-6)
  np.testing.assert_allclose(ops.adjust_hue(x, 0.0).numpy(), x.numpy(), atol=1e-5)
  gray = ops.adjust_saturation(x, 0.0).numpy()
  np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-6)
  flat = ops.adjust_contrast(x, 0.0).numpy()
  assert np.ptp(flat) < 1e-5
  assert ops.random_grayscale(x, _seed(0), 1.0).numpy().std(axis=-1).max() < 1e-6


def test_gaussian_blur_kernel_follows_sigma_and_keeps_constants():
  assert ops.gaussian_kernel(0.5).shape[0] == 2 * 2 + 1
  assert ops.gaussian_kernel(2.0).shape[0] == 2 * 6 + 1
  np.testing.assert_allclose(ops.gaussian_kernel(1.3).numpy().sum(), 1.0, rtol=1e-6)
  const = tf.fill([2, 8, 8, 3], 0.3)
  np.testing.assert_allclose(ops.gaussian_blur(const, 2.0).numpy(), 0.3, atol=1e-6)
  noise = _static_clip(1)
  assert ops.gaussian_blur(noise, 1.5).numpy().std() < 0.5 * noise.numpy().std()


def test_normalize_and_determinism():
  x = tf.fill([1, 2, 2, 3], 0.5)
  np.testing.assert_allclose(
    ops.normalize(x, (0.5, 0.25, 0.0), (1.0, 0.25, 0.5)).numpy()[0, 0, 0], [0.0, 1.0, 1.0]
  )
  clip = _static_clip(3)
  for fn in AUGMENTS.values():
    np.testing.assert_array_equal(fn(clip, _seed(7)).numpy(), fn(clip, _seed(7)).numpy())


def test_motion_window_bounds_match_motion_module():
  from jaxvssl.datasets import motion  # pylint: disable=g-import-not-at-top

  for n, fps in [(200, 10.0), (95, 29.97), (47, 8.0), (5, 25.0)]:
    w = motion.num_motion_windows(n, fps)
    starts, ends = ops.motion_window_bounds(n, w, fps)
    np.testing.assert_array_equal(np.stack([starts, ends], 1), motion.window_bounds(n, fps))


def test_gaussian_blur_equals_reflect_padded_convolution():
  x = np.random.default_rng(0).uniform(size=(2, 9, 11, 3)).astype(np.float32)
  sigma = 1.2
  k = ops.gaussian_kernel(sigma).numpy()
  r = len(k) // 2
  pad = np.pad(x, [(0, 0), (r, r), (r, r), (0, 0)], mode='reflect')
  rows = sum(k[j] * pad[:, j : j + 9] for j in range(len(k)))
  ref = sum(k[j] * rows[:, :, j : j + 11] for j in range(len(k)))
  np.testing.assert_allclose(ops.gaussian_blur(tf.constant(x), sigma).numpy(), ref, atol=1e-5)


def test_random_crop_copies_a_window_without_resampling():
  t, h, w = 2, 20, 27
  frames = np.arange(t * h * w * 3, dtype=np.float32).reshape(t, h, w, 3) / (t * h * w * 3)
  offsets = set()
  for i in range(40):
    out = ops.random_crop(tf.constant(frames), _seed(i), 12).numpy()
    assert out.shape == (t, 12, 12, 3)
    # Pixels are copied: the output is exactly one window of the frames, for every frame.
    y, x = np.argwhere(frames[0, :, :, 0] == out[0, 0, 0, 0])[0]
    np.testing.assert_array_equal(out, frames[:, y : y + 12, x : x + 12, :])
    offsets.add((int(y), int(x)))
  assert len(offsets) > 20  # the offset is random, within the frame
  assert max(y for y, _ in offsets) <= h - 12 and max(x for _, x in offsets) <= w - 12
  np.testing.assert_array_equal(
    ops.random_crop(tf.constant(frames), _seed(5), 12),
    ops.random_crop(tf.constant(frames), _seed(5), 12),
  )
  # Frames smaller than the crop are upscaled first.
  assert ops.random_crop(tf.constant(frames[:, :8, :8]), _seed(0), 12).shape == (t, 12, 12, 3)
