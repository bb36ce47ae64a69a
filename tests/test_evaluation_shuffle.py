"""Shuffle sensitivity: order-aware features drop, order-blind features do not."""

import json

import numpy as np
import pytest

from jaxvssl.evaluation import features as F
from jaxvssl.evaluation import linear_probe as lp
from jaxvssl.evaluation import shuffle

CFG = lp.LinearProbeConfig(learning_rates=(1e-1,), weight_decays=(0.0, 1e-3), num_steps=100)


def test_shuffle_frames_is_a_non_identity_group_permutation():
  clips = np.arange(2 * 8).reshape(2, 8, 1, 1, 1).astype(np.float32)
  clips = np.repeat(clips, 3, axis=0)
  out = shuffle.shuffle_frames(clips, np.random.default_rng(0), group_size=2)
  for i in range(clips.shape[0]):
    seq = out[i, :, 0, 0, 0]
    assert sorted(seq) == sorted(clips[i, :, 0, 0, 0])
    assert not np.array_equal(seq, clips[i, :, 0, 0, 0])
    assert np.all(seq[1::2] - seq[0::2] == 1)  # groups of 2 frames moved together
  again = shuffle.shuffle_frames(clips, np.random.default_rng(0), group_size=2)
  np.testing.assert_array_equal(out, again)
  with pytest.raises(ValueError, match='group_size'):
    shuffle.shuffle_frames(clips, np.random.default_rng(0), group_size=3)


def _dataset(rng, videos, offset, n=2, t=8):
  """Class 0: brightness rises over time, class 1: it falls (arrow-of-time classes) and is
  `offset` brighter overall (an appearance cue that survives shuffling)."""
  labels = np.arange(videos) % 2
  ramp = np.linspace(0, 1, t)
  batches = []
  for s in range(0, videos, 4):
    lab = labels[s : s + 4]
    base = np.where(lab[:, None] == 0, ramp, ramp[::-1] + offset)  # [b, t]
    clips = base[:, None, :, None, None, None] + 0.05 * rng.normal(size=(len(lab), n, t, 4, 4, 3))
    batches.append(
      {
        'clips': clips.astype(np.float32),
        'label': lab,
        'video_id': np.array([f'v{s + i}' for i in range(len(lab))]),
        'valid': np.ones(len(lab), bool),
      }
    )
  return batches


def order_aware(clips):  # mean brightness of the first and second half of the clip
  m = clips.mean(axis=(2, 3, 4))
  h = m.shape[1] // 2
  return np.stack([m[:, :h].mean(1), m[:, h:].mean(1)], 1)


def order_blind(clips):  # time-pooled statistics only
  m = clips.mean(axis=(2, 3, 4))
  return np.stack([m.mean(1), m.std(1)], 1)


@pytest.mark.parametrize(
  'embed,offset,drops', [(order_aware, 0.0, True), (order_blind, 0.5, False)]
)
def test_drop(embed, offset, drops, tmp_path):
  rng = np.random.default_rng(0)
  train_b, test_b = _dataset(rng, 40, offset), _dataset(rng, 20, offset)
  train = F.extract_features(embed, train_b)
  test = F.extract_features(embed, test_b)
  shuffled = F.extract_features(shuffle.shuffled_embed_fn(embed, seed=0), test_b)
  _, probe = lp.evaluate_linear_probe(train, test, CFG)
  m = shuffle.evaluate_shuffle_sensitivity(probe, test, shuffled, tmp_path)
  assert m['shuffle/video_top1_original'] == 1.0
  if drops:
    assert m['shuffle/clip_drop'] > 0.2 and m['shuffle/video_drop'] > 0.2
  else:
    assert m['shuffle/clip_drop'] == pytest.approx(0.0) and m[
      'shuffle/video_drop'
    ] == pytest.approx(0.0)
  assert json.loads((tmp_path / 'results.json').read_text())['metrics'] == pytest.approx(m)


def test_mismatched_videos_rejected():
  a = {'features': np.zeros((2, 1, 3), np.float32), 'labels': np.array([0, 1])}
  b = dict(a, labels=np.array([1, 0]))
  probe = lp.TrainedProbe(np.zeros((3, 2)), np.zeros(2), np.zeros(3), np.ones(3), 0.1, 0.0)
  with pytest.raises(ValueError, match='labels differ'):
    shuffle.shuffle_sensitivity(probe, a, b)
