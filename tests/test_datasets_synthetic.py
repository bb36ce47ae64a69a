"""Tests of the synthetic_motion renderer (jaxvssl.datasets.synthetic); its TFDS builder has
tests/test_datasets_builders_synthetic_motion.py."""

import collections
import dataclasses

import cv2
import numpy as np
import pytest

from jaxvssl.datasets import synthetic

# Small videos keep every test well under a second of rendering.
SMALL = synthetic.SyntheticConfig(num_frames=8, height=32, width=32, fps=8.0)


def test_class_table():
  assert synthetic.NUM_CLASSES == 16
  assert len(set(synthetic.CLASS_NAMES)) == 16
  by_name = {c.name: c for c in synthetic.CLASSES}
  pairs = 0
  for c in synthetic.CLASSES:
    if c.partner is None:
      assert not c.reverse
      continue
    partner = by_name[c.partner]
    assert partner.partner == c.name and partner.law == c.law
    assert partner.reverse != c.reverse  # exactly one of the two is reversed
    pairs += 1
  assert pairs == 14


@pytest.mark.parametrize('name', [c.name for c in synthetic.CLASSES if c.reverse])
def test_time_reversal_pairs_are_exact_reversals(name):
  partner = dict((c.name, c.partner) for c in synthetic.CLASSES)[name]
  for seed in (0, 1):
    forward = synthetic.render_video(partner, seed, SMALL)
    backward = synthetic.render_video(name, seed, SMALL)
    np.testing.assert_array_equal(backward, forward[::-1])
    assert not np.array_equal(backward, forward)  # the motion is not symmetric


def test_deterministic_from_seed_split_index():
  a = synthetic.generate_example(SMALL, 'train', 5)
  b = synthetic.generate_example(SMALL, 'train', 5)
  np.testing.assert_array_equal(a['video'], b['video'])
  np.testing.assert_array_equal(a['motion_scores'], b['motion_scores'])
  assert a['video'].dtype == np.uint8 and a['video'].shape == (8, 32, 32, 3)
  for other in (
    synthetic.generate_example(SMALL, 'test', 5),
    synthetic.generate_example(SMALL, 'train', 5 + 16),  # same class
    synthetic.generate_example(dataclasses.replace(SMALL, seed=1), 'train', 5),
  ):
    assert not np.array_equal(a['video'], other['video'])
  assert a['video_id'] != synthetic.generate_example(SMALL, 'test', 5)['video_id']


def test_class_balance():
  counts = collections.Counter(synthetic.example_label(i) for i in range(16 * 7))
  assert set(counts.values()) == {7} and len(counts) == 16


def _mean_flow(video):
  """Mean Farneback flow (x, y) over a video, in pixels per frame."""
  gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video]
  flows = [
    cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 3, 5, 1.1, 0)
    for a, b in zip(gray[:-1], gray[1:])
  ]
  return np.mean(flows, axis=(0, 1, 2))


@pytest.mark.parametrize(
  'name, component, sign',
  [
    ('move_right', 0, 1),
    ('move_left', 0, -1),
    ('move_down', 1, 1),
    ('move_up', 1, -1),
    ('move_down_right', 0, 1),
    ('move_down_right', 1, 1),
    ('move_up_left', 0, -1),
    ('move_up_left', 1, -1),
  ],
)
def test_motion_direction_matches_class_name(name, component, sign):
  # Screen coordinates: +x right, +y down. Averaged over a few videos.
  cfg = dataclasses.replace(SMALL, num_frames=6, height=48, width=48)
  mean = np.mean([_mean_flow(synthetic.render_video(name, s, cfg)) for s in range(4)], axis=0)
  assert sign * mean[component] > 0.2


def _law_states(law, seed=3):
  return synthetic.law_states(law, seed, synthetic.SyntheticConfig())


def test_grow_scales_up_and_keeps_mean_area():
  for law in ('grow', 'approach_retreat'):
    _, states = _law_states(law)
    for st in states:
      assert np.mean(st.scale**2) == pytest.approx(1.0)  # class-independent mean area
      if law == 'grow':
        assert np.all(np.diff(st.scale) > 0) and st.scale[-1] / st.scale[0] > 1.5
      else:
        assert st.scale[len(st.scale) // 2] > max(st.scale[0], st.scale[-1])


def test_rotate_and_orbit_turn_clockwise_on_screen():
  _, states = _law_states('rotate_cw')
  for st in states:
    assert np.all(np.diff(st.angle) > 0)  # increasing angle = clockwise (y down)
  video, states = _law_states('orbit_cw')
  for _obj, st in zip(video.objects, states):
    rx, ry = st.x[:-1] - np.mean(st.x), st.y[:-1] - np.mean(st.y)
    vx, vy = np.diff(st.x), np.diff(st.y)
    # z of r x v > 0: clockwise on a y-down screen.
    assert np.mean(rx * vy - ry * vx) > 0


def test_bounce_height():
  t = np.linspace(0, 1, 2001)
  h = synthetic.bounce_height(t, height=10.0, restitution=0.5, settle=0.8)
  assert h[0] == 10.0 and np.all(h >= 0) and np.all(h[t >= 0.8] == 0)
  # Peaks after each impact shrink by e^2.
  peaks = [h[i] for i in range(1, len(h) - 1) if h[i - 1] < h[i] >= h[i + 1] and h[i] > 0.05]
  np.testing.assert_allclose(np.array(peaks[1:3]) / np.array(peaks[:2]), 0.25, rtol=0.05)
  video, states = _law_states('fall_bounce')
  for obj, st in zip(video.objects, states):
    assert st.y[0] < st.y[-1] and st.y[-1] == pytest.approx(obj.position[1])


def _appearance_features(video):
  """Colour histogram (8 bins per channel), mean and std of all pixels."""
  pixels = video.reshape(-1, 3)
  histogram = np.concatenate(
    [np.bincount(pixels[:, c] // 32, minlength=8) for c in range(3)]
  ) / len(pixels)
  return np.concatenate([histogram, pixels.mean(0) / 255, pixels.std(0) / 255])


def _nearest_centroid_accuracy(features, labels):
  """2-fold cross-validated nearest-centroid accuracy (standardised features)."""
  features = (features - features.mean(0)) / (features.std(0) + 1e-6)
  correct = 0
  folds = (np.arange(len(labels)) // 16) % 2  # labels are round robin
  for f in (0, 1):
    train, test = folds != f, folds == f
    centroids = np.stack([features[train & (labels == k)].mean(0) for k in range(16)])
    dist = ((features[test][:, None] - centroids[None]) ** 2).sum(-1)
    correct += (dist.argmin(1) == labels[test]).sum()
  return correct / len(labels)


def test_appearance_does_not_predict_class():
  cfg = dataclasses.replace(SMALL, num_frames=6)
  labels, videos = [], []
  for i in range(16 * 12):
    ex = synthetic.generate_example(cfg, 'train', i, motion_top_k=1)
    labels.append(ex['label'])
    videos.append(ex['video'])
  labels = np.array(labels)
  features = np.stack([_appearance_features(v) for v in videos])
  # Chance is 1/16 = 0.0625; the std of the accuracy at chance is ~0.017 here.
  assert _nearest_centroid_accuracy(features, labels) < 0.15
  # Control: the same classifier finds a class-dependent tint (16 grey levels
  # per class id, against a within-class colour spread of ~60 levels), so the
  # check above has the power to fail.
  tinted = [
    np.clip(v.astype(int) + 16 * l, 0, 255).astype(np.uint8) for v, l in zip(videos, labels)
  ]
  leaky = np.stack([_appearance_features(v) for v in tinted])
  assert _nearest_centroid_accuracy(leaky, labels) > 0.2


def test_config_validation():
  with pytest.raises(ValueError, match='num_frames'):
    synthetic.SyntheticConfig(num_frames=1)
  with pytest.raises(ValueError, match='unknown class'):
    synthetic.render_video('jump', 0, SMALL)
  with pytest.raises(ValueError, match='unknown split'):
    synthetic.generate_example(SMALL, 'val', 0)


def test_encoded_example_uses_the_one_jpeg_encoder():
  from jaxvssl.datasets import decode  # pylint: disable=g-import-not-at-top

  assert synthetic.encode_jpeg_frames is decode.encode_jpeg_frames
  example = synthetic.encoded_example(SMALL, 'train', 5, motion_top_k=50, jpeg_quality=90)
  frames = synthetic.generate_example(SMALL, 'train', 5, motion_top_k=50)['video']
  assert example['video'] == decode.encode_jpeg_frames(frames, 90)
  decoded = np.stack(
    [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in example['video']]
  )
  assert np.abs(decoded[..., ::-1].astype(int) - frames).mean() < 10  # RGB in, RGB stored
