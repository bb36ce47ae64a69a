"""SCVRL targeted sampling: the drawn windows follow softmax(motion score / beta) (chi-square).

The scores come from real data sets as they are stored: a synthetic_motion example and a
`jaxvssl prepare folder` data set of videos whose speed changes every second. The sampler is
`ops.targeted_start` (what `pipeline` calls for `sampler='targeted'`) with a 1-frame span, so
the drawn start is the drawn window's frame and nothing is clipped.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from jaxvssl.datasets import synthetic
from jaxvssl.evaluation.aggregation import softmax
from jaxvssl.inputs import ops
from tests.test_datasets_prepare import textured_background, write_video

DRAWS = 4000
# A correct sampler fails a test at this level once in 10,000 seeds; a wrong one (uniform where
# softmax is not) fails it with p < 1e-12 in the power checks below.
P_MIN = 1e-4


def drawn_windows(scores: np.ndarray, num_frames: int, fps: float, beta: float) -> np.ndarray:
  """Window index of `DRAWS` targeted 1-frame starts, `[DRAWS]`."""
  seeds = tf.stack([tf.range(DRAWS, dtype=tf.int64), tf.fill([DRAWS], tf.constant(7, tf.int64))], 1)
  draw = tf.function(
    lambda seeds: tf.map_fn(
      lambda s: ops.targeted_start(num_frames, 1, scores, fps, beta, s),
      seeds,
      fn_output_signature=tf.int32,
    )
  )
  starts = draw(seeds).numpy()
  window_starts, _ = ops.motion_window_bounds(num_frames, len(scores), fps)
  return np.searchsorted(window_starts.numpy(), starts, side='right') - 1


def chi_square_p(windows: np.ndarray, p: np.ndarray) -> float:
  counts = np.bincount(windows, minlength=len(p))
  return float(scipy.stats.chisquare(counts, DRAWS * p).pvalue)


def check_follows_softmax(scores, num_frames, fps, betas, power_beta):
  scores = np.asarray(scores, np.float32)
  for beta in betas:
    p = np.full(len(scores), 1 / len(scores)) if np.isinf(beta) else softmax(scores / beta)
    windows = drawn_windows(scores, num_frames, fps, beta)
    assert chi_square_p(windows, p) > P_MIN, (beta, np.bincount(windows), p)
  # Power: at a temperature where softmax is far from uniform, the draws reject uniform.
  windows = drawn_windows(scores, num_frames, fps, power_beta)
  uniform = np.full(len(scores), 1 / len(scores))
  assert chi_square_p(windows, uniform) < 1e-12
  assert chi_square_p(windows, softmax(scores / power_beta)) > P_MIN


def test_synthetic_motion_windows_follow_softmax():
  cfg = synthetic.SyntheticConfig()
  example = synthetic.generate_example(cfg, 'train', synthetic.class_index('fall_bounce'))
  scores = example['motion_scores']
  assert len(scores) == 3 and np.ptp(scores) > 0.5  # a ball that comes to rest: motion decays
  # beta 3 and 5: the paper's; inf: uniform. beta 0.25 makes the scores' differences decisive.
  check_follows_softmax(
    scores, example['num_frames'], example['fps'], (3.0, 5.0, np.inf), power_beta=0.25
  )


FPS, SECONDS, SIZE = 8, 4, 48
SPEEDS = (0, 1, 3, 6)  # pixels per frame in each second


def speed_changing_frames(seed: int) -> np.ndarray:
  """uint8 [SECONDS * FPS, SIZE, SIZE, 3]: a bright square on texture, speed SPEEDS[second]."""
  background = textured_background(seed)[:SIZE, :SIZE]
  frames = np.repeat(background[None], SECONDS * FPS, axis=0)
  x = 2.0
  for t in range(len(frames)):
    frames[t, 18:30, int(x) % (SIZE - 12) : int(x) % (SIZE - 12) + 12] = 255
    x += SPEEDS[t // FPS]
  return frames


@pytest.fixture(scope='module')
def prepared_folder(tmp_path_factory):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  from jaxvssl.datasets.prepare import prepare_main  # pylint: disable=g-import-not-at-top

  root = tmp_path_factory.mktemp('targeted')
  for label, cls in enumerate(('a', 'b')):
    write_video(root / 'videos' / cls / 'clip.avi', speed_changing_frames(label), fps=FPS)
  argv = ['folder', '--videos_dir', str(root / 'videos'), '--data_dir', str(root / 'tfds')]
  assert prepare_main(argv + ['--config_name', 'targeted', '--num_workers', '1']) == 0
  builder = tfds.builder('video_folder/targeted', data_dir=str(root / 'tfds'))
  ds = builder.as_dataset('train', decoders={'video': tfds.decode.SkipDecoding()})
  return list(tfds.as_numpy(ds))


def test_prepared_folder_windows_follow_softmax(prepared_folder):
  assert len(prepared_folder) == 2
  for example in prepared_folder:
    scores = example['motion_scores']
    assert len(scores) == SECONDS
    assert np.all(np.diff(scores) > 0), scores  # the stored scores rank the seconds by speed
    check_follows_softmax(
      scores, int(example['num_frames']), float(example['fps']), (3.0, 5.0, np.inf), power_beta=1.0
    )
