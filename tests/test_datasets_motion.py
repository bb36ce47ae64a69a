"""Tests of jaxvssl.datasets.motion (SCVRL targeted-sampling motion scores)."""

import numpy as np
import pytest

from jaxvssl.datasets import motion


def _textured_square_video(num_frames=12, size=32, step=1, seed=0):
  """A noise-textured square over a smooth background, moving ``step`` px/frame."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size]
  background = (60 + 40 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.uint8)
  texture = rng.integers(120, 255, size=(10, 10), dtype=np.uint8)
  frames = np.repeat(background[None, :, :, None], num_frames, axis=0).repeat(3, axis=3)
  for t in range(num_frames):
    x = (2 + step * t) % (size - 10)  # bounces back to the left edge
    frames[t, 3:13, x : x + 10] = texture[..., None]
  return frames


def test_moving_scores_higher_than_static():
  moving = motion.frame_motion_scores(_textured_square_video(step=1), top_k=100)
  static = motion.frame_motion_scores(_textured_square_video(step=0), top_k=100)
  assert moving.dtype == np.float32 and moving.shape == (12,)
  # Farneback leaves a small residual on identical textured frames, far
  # below the flow edges of a moving object.
  assert np.max(static) < 0.1 * np.min(moving[1:])
  faster = motion.frame_motion_scores(_textured_square_video(step=2), top_k=100)
  assert np.median(faster) > np.median(moving)


def test_deterministic_and_frame_zero_copies_frame_one():
  video = _textured_square_video()
  a = motion.frame_motion_scores(video, top_k=50)
  b = motion.frame_motion_scores(video.copy(), top_k=50)
  np.testing.assert_array_equal(a, b)
  assert a[0] == a[1]
  np.testing.assert_array_equal(motion.frame_motion_scores(video[:1]), np.zeros(1, np.float32))


def test_top_k_is_clipped_to_pixel_count():
  video = _textured_square_video(num_frames=4, size=16)
  np.testing.assert_array_equal(
    motion.frame_motion_scores(video, top_k=4000), motion.frame_motion_scores(video, top_k=16 * 16)
  )
  # A smaller k looks only at the strongest edges: never a lower median.
  assert np.all(
    motion.frame_motion_scores(video, top_k=20) >= motion.frame_motion_scores(video, top_k=256)
  )


@pytest.mark.parametrize(
  'num_frames, fps, expected',
  [
    (48, 16, 3),
    (50, 16, 3),
    (63, 16, 3),
    (64, 16, 4),
    (10, 16, 1),
    (1, 25, 1),
    (90, 29.97, 3),
    (30, 29.97, 1),
    (32, 16, 2),
  ],
)
def test_window_count_rule(num_frames, fps, expected):
  assert motion.num_motion_windows(num_frames, fps) == expected
  bounds = motion.window_bounds(num_frames, fps)
  assert bounds.shape == (expected, 2)
  # Windows tile [0, T) without gaps; the last one absorbs the remainder.
  assert bounds[0, 0] == 0 and bounds[-1, 1] == num_frames
  np.testing.assert_array_equal(bounds[1:, 0], bounds[:-1, 1])
  assert np.all(bounds[:, 1] > bounds[:, 0])


def test_window_scores_are_medians_of_frame_scores():
  video = np.concatenate(
    [_textured_square_video(8, step=0), _textured_square_video(8, step=2)]
  )  # still, then moving
  frame_scores = motion.frame_motion_scores(video, top_k=80)
  windows = motion.window_motion_scores(video, fps=4, top_k=80)  # 4 windows of 4
  assert windows.dtype == np.float32 and windows.shape == (4,)
  for i, (s, e) in enumerate(motion.window_bounds(16, 4)):
    assert windows[i] == pytest.approx(np.median(frame_scores[s:e]))
  assert windows[3] > 10 * windows[0]
  # Half-second windows: 8 of them.
  assert motion.window_motion_scores(video, fps=4, window_seconds=0.5, top_k=80).shape == (8,)


def test_scaled_top_k():
  assert motion.scaled_top_k(128, 171) == 4000
  assert motion.scaled_top_k(64, 64) == 749
  assert motion.scaled_top_k(1, 1) == 1


@pytest.mark.parametrize(
  'bad',
  [
    np.zeros((4, 8, 8), np.uint8),
    np.zeros((4, 8, 8, 3), np.float32),
    np.zeros((0, 8, 8, 3), np.uint8),
  ],
)
def test_rejects_bad_frames(bad):
  with pytest.raises(ValueError, match='motion scores'):
    motion.frame_motion_scores(bad)


def test_rejects_bad_fps():
  with pytest.raises(ValueError, match='fps'):
    motion.window_motion_scores(_textured_square_video(4), fps=0)
