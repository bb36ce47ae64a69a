"""evaluate_frozen: all frozen protocols, files per protocol, feature cache used on a re-run."""

import json

import numpy as np

from jaxvssl.evaluation import linear_probe as lp
from jaxvssl.evaluation import suite


def _data(rng, videos, n=2, t=4):
  labels = np.arange(videos) % 3
  ramp = np.linspace(0, 1, t)
  clips = (
    np.eye(3, 3)[labels][:, None, None, None, None, :] * ramp[None, None, :, None, None, None]
    + 0.05 * rng.normal(size=(videos, n, t, 2, 2, 3))
  ).astype(np.float32)
  return [
    {
      'clips': clips[s : s + 4],
      'label': labels[s : s + 4],
      'video_id': np.array([f'v{i}' for i in range(s, min(s + 4, videos))]),
      'valid': np.ones(len(labels[s : s + 4]), bool),
    }
    for s in range(0, videos, 4)
  ]


def test_evaluate_frozen(tmp_path):
  rng = np.random.default_rng(0)
  train, test = _data(rng, 24), _data(rng, 9)
  calls = []

  def embed(clips):  # order-aware: per-channel brightness of the first and last frame
    calls.append(clips.shape[0])
    return np.concatenate([clips[:, 0].mean((1, 2)), clips[:, -1].mean((1, 2))], 1)

  cfg = lp.LinearProbeConfig(learning_rates=(0.1,), weight_decays=(0.0,), num_steps=60)
  kwargs = dict(
    cache_dir=tmp_path / 'cache',
    checkpoint=None,
    eval_config={'num_clips': 2},
    linear_probe_config=cfg,
  )
  m = suite.evaluate_frozen(embed, train, test, tmp_path / 'run1', **kwargs)
  n_calls = len(calls)
  assert m['retrieval/R@1'] == 1.0 and m['linear_probe/video_top1'] == 1.0
  assert m['shuffle/clip_drop'] > 0
  for sub in ('retrieval', 'linear_probe', 'shuffle'):
    assert json.loads((tmp_path / 'run1' / sub / 'results.json').read_text())['metrics']
  assert (tmp_path / 'run1' / 'retrieval' / 'recall_at_k.png').stat().st_size > 0
  summary = (tmp_path / 'run1' / 'summary.md').read_text().splitlines()
  assert summary[2].startswith('| run1 | 100.0 |') and summary[2].count(' - ') == 2  # no finetune
  m2 = suite.evaluate_frozen(embed, train, test, tmp_path / 'run2', make_plots=False, **kwargs)
  assert len(calls) == n_calls  # every split (incl. shuffled test) came from the cache
  assert m2 == m
