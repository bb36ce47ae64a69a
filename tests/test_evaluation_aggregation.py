"""Clip-level vs video-level top-1 on hand-made logits."""

import numpy as np
import pytest

from jaxvssl.evaluation import aggregation


def test_clip_and_video_level_differ():
  # video 0 (label 1): two clips weakly say 0, one clip strongly says 1.
  #   clip level: 1 of 3 right; mean softmax: [0.487, 0.513] -> class 1 -> video right.
  # video 1 (label 0): all clips say 0 -> both right.
  logits = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 10.0]], [[3.0, 0.0], [2.0, 0.0], [5.0, 1.0]]])
  labels = np.array([1, 0])
  assert aggregation.clip_top1(logits, labels) == pytest.approx(4 / 6)
  assert aggregation.video_top1(logits, labels) == 1.0
  probs = aggregation.video_probabilities(logits)
  p = np.exp(1) / (np.exp(1) + 1)
  np.testing.assert_allclose(
    probs[0],
    [(2 * p + 1 / (1 + np.exp(10))) / 3, (2 * (1 - p) + np.exp(10) / (1 + np.exp(10))) / 3],
  )
  np.testing.assert_allclose(probs.sum(1), 1.0)


def test_video_level_can_be_worse_than_clip_level():
  # label 0: two clips barely right, one clip confidently wrong -> mean softmax picks 1.
  logits = np.array([[[0.1, 0.0], [0.1, 0.0], [0.0, 8.0]]])
  assert aggregation.clip_top1(logits, np.array([0])) == pytest.approx(2 / 3)
  assert aggregation.video_top1(logits, np.array([0])) == 0.0


def test_mean_softmax_not_mean_logits():
  # mean logits would say class 0 (mean [2.0, 1.67]); mean softmax says class 1.
  logits = np.array([[[6.0, 0.0], [0.0, 2.5], [0.0, 2.5]]])
  assert aggregation.video_probabilities(logits)[0].argmax() == 1
  assert logits.mean(1)[0].argmax() == 0


def test_shape_errors():
  with pytest.raises(ValueError, match=r'\[V, N, C\]'):
    aggregation.clip_top1(np.zeros((2, 3)), np.zeros(2))
  with pytest.raises(ValueError, match='labels'):
    aggregation.video_top1(np.zeros((2, 3, 4)), np.zeros(3))
