"""Every plot function writes a non-empty, valid PNG."""

import json

import numpy as np
import pytest

from jaxvssl.evaluation import plots

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _is_png(path):
  data = open(path, 'rb').read()
  return len(data) > 1000 and data[:8] == PNG_MAGIC


def test_loss_curves(tmp_path):
  paths = []
  for run in ('a', 'b'):
    (tmp_path / run).mkdir()
    p = tmp_path / run / 'metrics.jsonl'
    p.write_text(
      '\n'.join(
        json.dumps({'step': s, 'loss': 1.0 / (s + 1), 'sdp_loss': 0.5, 'note': 'x'})
        for s in range(20)
      )
      + '\n'
    )
    paths.append(p)
  assert _is_png(plots.plot_loss_curves(paths, tmp_path / 'loss.png'))
  assert _is_png(plots.plot_loss_curves({'A': paths[0]}, tmp_path / 'l2.png', keys=['loss']))
  with pytest.raises(ValueError, match='no loss keys'):
    plots.plot_loss_curves(paths, tmp_path / 'x.png', keys=[])


def test_recall_curves(tmp_path):
  rec = {
    'run1': {1: 0.1, 5: 0.3, 10: 0.4, 20: 0.5, 50: 0.7},
    'run2': {'R@1': 0.2, 'R@5': 0.35, 'R@10': 0.5, 'R@20': 0.6, 'R@50': 0.8},
  }
  assert _is_png(plots.plot_recall_curves(rec, tmp_path / 'r.png'))


def test_retrieval_gallery(tmp_path):
  rng = np.random.default_rng(0)
  q = [rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8) for _ in range(2)]
  nbrs = [[rng.normal(size=(4, 16, 16, 3)).astype(np.float32) for _ in range(3)] for _ in range(2)]
  out = plots.plot_retrieval_gallery(
    q, [0, 1], nbrs, [[0, 1, 0], [2, 2, 1]], tmp_path / 'g.png', class_names=['left', 'right', 'up']
  )
  assert _is_png(out)


def test_embedding(tmp_path):
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(30, 2, 8)) + np.repeat(np.eye(3, 8) * 4, 10, 0)[:, None]
  labels = np.repeat(np.arange(3), 10)
  assert _is_png(plots.plot_embedding(feats, labels, tmp_path / 'e.png'))
  xy = plots.pca_2d(np.repeat(np.eye(3, 8) * 4, 10, 0))
  assert xy.shape == (30, 2)
  with pytest.raises(ValueError, match='method'):
    plots.plot_embedding(feats, labels, tmp_path / 'e2.png', method='umap')
