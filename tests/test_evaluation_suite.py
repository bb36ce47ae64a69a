"""evaluate_frozen: all frozen protocols, files per protocol, feature cache used on a re-run."""

import json

import numpy as np
import pytest

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


def test_sharded_evaluation_gives_the_numbers_of_one_device(tmp_path, monkeypatch):
  """Feature extraction split over 8 fake CPU devices (chunks padded to a multiple of 8) gives the
  features and metrics of one device."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  from jaxvssl import parallel  # pylint: disable=g-import-not-at-top
  from jaxvssl.evaluation import features  # pylint: disable=g-import-not-at-top

  class Backbone(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool, return_stages: bool = False):
      x = nn.Conv(6, (2, 1, 1))(x)
      x = nn.BatchNorm(use_running_average=not train)(x)
      return nn.relu(x).mean(axis=(1, 2, 3))

  rng = np.random.default_rng(0)
  train, test = _data(rng, 24), _data(rng, 9)
  module = Backbone()
  variables = module.init(jax.random.PRNGKey(0), train[0]['clips'][:, 0], train=False)
  cfg = lp.LinearProbeConfig(learning_rates=(0.1,), weight_decays=(0.0,), num_steps=60)
  placed = []  # (rows, devices) of every chunk handed to the devices
  make_array = jax.make_array_from_callback
  monkeypatch.setattr(
    jax,
    'make_array_from_callback',
    lambda shape, sharding, cb: (
      placed.append((shape[0], len(sharding.device_set))) or make_array(shape, sharding, cb)
    ),
  )
  results = {}
  for n in (1, 8):
    mesh = parallel.make_mesh(jax.devices()[:n])
    # 6 clips per chunk: 8 devices see it padded to 8 rows, the last chunk of a batch to 8 too.
    embed = features.make_backbone_embed_fn(module, variables, batch_size=6, mesh=mesh)
    results[n] = (
      features.extract_features(embed, test)['features'],
      suite.evaluate_frozen(
        embed, train, test, tmp_path / f'run{n}', linear_probe_config=cfg, make_plots=False
      ),
    )
  assert placed and all(rows == 8 and devices == 8 for rows, devices in placed[-3:])
  np.testing.assert_allclose(results[8][0], results[1][0], rtol=1e-5, atol=1e-6)
  assert results[8][1] == pytest.approx(results[1][1], abs=1e-6)
