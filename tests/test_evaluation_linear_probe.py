"""Linear probe: separable data solved, validation split carved from train only."""

import json

import numpy as np
import pytest

from jaxvssl.evaluation import linear_probe as lp

CFG = lp.LinearProbeConfig(learning_rates=(1e-3, 1e-1), weight_decays=(0.0, 1e-2), num_steps=150)


def _separable(rng, videos_per_class, num_classes=4, clips=3, dim=12, noise=0.3):
  means = 3.0 * np.eye(num_classes, dim)
  labels = np.repeat(np.arange(num_classes), videos_per_class)
  feats = means[labels][:, None, :] + noise * rng.normal(size=(labels.size, clips, dim))
  return {
    'features': feats.astype(np.float32),
    'labels': labels.astype(np.int32),
    'video_ids': np.array([f'v{i}' for i in range(labels.size)]),
  }


def test_separable_features_reach_full_accuracy(tmp_path):
  rng = np.random.default_rng(0)
  train, test = _separable(rng, 20), _separable(rng, 10)
  metrics, probe = lp.evaluate_linear_probe(train, test, CFG, tmp_path, run_name='sep')
  assert metrics['linear_probe/clip_top1'] >= 0.98
  assert metrics['linear_probe/video_top1'] == 1.0
  assert probe.w.shape == (12, 4)
  payload = json.loads((tmp_path / 'results.json').read_text())
  assert payload['protocol'] == 'linear_probe'
  assert len(payload['details']['grid']) == 4
  assert payload['details']['chosen_learning_rate'] in CFG.learning_rates


def test_stratified_split_is_seeded_disjoint_and_per_class():
  labels = np.repeat(np.arange(5), [10, 10, 5, 2, 1])
  fit, val = lp.stratified_split(labels, 0.2, seed=3)
  assert np.intersect1d(fit, val).size == 0
  np.testing.assert_array_equal(np.sort(np.concatenate([fit, val])), np.arange(labels.size))
  assert [int((labels[val] == c).sum()) for c in range(5)] == [2, 2, 1, 1, 0]
  fit2, val2 = lp.stratified_split(labels, 0.2, seed=3)
  np.testing.assert_array_equal(val, val2)
  assert not np.array_equal(val, lp.stratified_split(labels, 0.2, seed=4)[1])


def test_selection_never_reads_test():
  rng = np.random.default_rng(1)
  train, test = _separable(rng, 12, noise=1.5), _separable(rng, 6, noise=1.5)
  permuted = dict(test, labels=rng.permutation(test['labels']))
  _, probe_a = lp.evaluate_linear_probe(train, test, CFG)
  _, probe_b = lp.evaluate_linear_probe(train, permuted, CFG)
  assert (probe_a.learning_rate, probe_a.weight_decay) == (
    probe_b.learning_rate,
    probe_b.weight_decay,
  )
  np.testing.assert_array_equal(probe_a.w, probe_b.w)
  # and the selection is a function of train alone
  (lr, wd), rows = lp.select_hyperparameters(train, CFG)
  assert (lr, wd) == (probe_a.learning_rate, probe_a.weight_decay)
  best = max(r['val_video_top1'] for r in rows)
  assert [
    r['val_video_top1'] for r in rows if (r['learning_rate'], r['weight_decay']) == (lr, wd)
  ] == [best]


def test_config_errors_name_the_key():
  with pytest.raises(KeyError, match='learning_rat'):
    lp.LinearProbeConfig.from_mapping({'learning_rat': 0.1})
  with pytest.raises(ValueError, match='val_fraction'):
    lp.LinearProbeConfig(val_fraction=1.5)
