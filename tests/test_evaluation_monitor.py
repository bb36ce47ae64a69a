"""Online monitor: kNN / R@k scalars on small subsets, on schedule only."""

import numpy as np
import pytest

from jaxvssl.evaluation import monitor


def _subset(rng, videos, num_classes=3):
  labels = np.arange(videos) % num_classes
  clips = np.eye(num_classes, 6)[labels][:, None, None, None, None, :] + 0.1 * rng.normal(
    size=(videos, 2, 2, 1, 1, 6)
  )
  return [
    {
      'clips': clips.astype(np.float32),
      'label': labels,
      'video_id': np.array([f'v{i}' for i in range(videos)]),
      'valid': np.ones(videos, bool),
    }
  ]


def embed(clips):
  return clips.mean(axis=(1, 2, 3))  # [B, T, H, W, C] -> [B, C]


def test_monitor_metrics_on_separable_subsets():
  rng = np.random.default_rng(0)
  gal, qry = _subset(rng, 12), _subset(rng, 6)
  out = monitor.monitor_metrics(embed, gal, lambda: iter(qry), knn_k=5)
  assert out == {'monitor/knn_top1': 1.0, 'monitor/R@1': 1.0, 'monitor/R@5': 1.0}
  bad = monitor.monitor_metrics(lambda c: rng.normal(size=(c.shape[0], 4)), gal, qry)
  assert set(bad) == set(out) and 0.0 <= bad['monitor/knn_top1'] <= 1.0


def test_knn_vote_weights():
  g = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], np.float32)
  q = np.array([[0.8, 0.6]], np.float32)
  # k=3: class 0 gets exp(0.8/t), class 1 gets 2 exp(0.6/t): with t=0.07 class 0 wins, with t=10 class 1
  assert monitor.knn_predict(q, g, np.array([0, 1, 1]), 2, 3, 0.07)[0] == 0
  assert monitor.knn_predict(q, g, np.array([0, 1, 1]), 2, 3, 10.0)[0] == 1


def test_online_monitor_schedule():
  rng = np.random.default_rng(0)
  m = monitor.OnlineMonitor(_subset(rng, 9), _subset(rng, 3), every_steps=100, knn_k=3)
  assert m(150, embed) == {}
  assert m(200, embed)['monitor/R@1'] == 1.0
  with pytest.raises(ValueError, match='every_steps'):
    monitor.OnlineMonitor([], [], every_steps=0)
