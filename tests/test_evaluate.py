"""Run-level evaluation (`jaxvssl.evaluate`): finetuning a run end to end on a built data set."""

import json

import numpy as np
import pytest

from jaxvssl import evaluate
from jaxvssl.datasets.builders import synthetic_motion
from tests.helpers import tiny_config


@pytest.mark.slow
def test_finetune_run_end_to_end_on_synthetic_motion(tmp_path):
  """finetune_run on a built synthetic_motion/tiny (random init, 1 epoch, batch split over 4 fake
  CPU devices): ~2-3 min on 2 cores."""
  import jax  # pylint: disable=g-import-not-at-top

  from jaxvssl import parallel  # pylint: disable=g-import-not-at-top

  synthetic_motion.build_synthetic_motion(str(tmp_path / 'tfds'), 'tiny', num_workers=0)
  config = tiny_config(
    'moco',
    **{
      'data.name': 'synthetic_motion/tiny',
      'data.data_dir': str(tmp_path / 'tfds'),
      'evaluation.num_clips': 2,
      'evaluation.batch_size': 4,
    },
  )
  metrics = evaluate.finetune_run(
    str(tmp_path),
    config,
    tmp_path / 'ft',
    random_init=True,
    finetune_config={'epochs': 1, 'batch_size': 4, 'log_every_steps': 1},
    mesh=parallel.make_mesh(jax.devices()[:4]),
  )
  assert (
    0.0 <= metrics['finetune/clip_top1'] <= 1.0 and 0.0 <= metrics['finetune/video_top1'] <= 1.0
  )
  assert np.isfinite(metrics['finetune/final_train_loss'])
  payload = json.loads((tmp_path / 'ft' / 'results.json').read_text())
  assert payload['details']['total_steps'] == 64 // 4  # synthetic_motion/tiny: 64 train videos
  assert len((tmp_path / 'ft' / 'metrics.jsonl').read_text().splitlines()) == 16
  assert sorted(p.name for p in (tmp_path / 'ft' / 'checkpoints').iterdir()) == ['16']


@pytest.mark.parametrize('batches', [0, 2])
def test_evaluate_run_recomputes_bn_statistics_only_when_asked(tmp_path, monkeypatch, batches):
  """evaluation.recompute_bn_batches > 0 hands natural clips to the embedding; 0 hands None (the
  embedding as before). The protocols themselves are stubbed: this checks the wiring only."""
  from jaxvssl import config as config_lib, runs  # pylint: disable=g-import-not-at-top

  config = tiny_config(
    'moco', **{'evaluation.recompute_bn_batches': batches, 'evaluation.pretext_batches': 0}
  )
  config_lib.save_config(config, str(tmp_path))
  seen = {}
  natural = object()
  monkeypatch.setattr(runs, 'natural_clip_batches', lambda cfg: natural)

  def embed_fn(cfg, seed=None, bn_batches=None, mesh=None):
    seen['bn_batches'] = bn_batches
    return lambda clips: clips

  monkeypatch.setattr(runs, 'random_init_embed_fn', embed_fn)
  monkeypatch.setattr(evaluate.suite, 'evaluate_frozen', lambda *a, **k: {'retrieval/R@1': 0.0})
  monkeypatch.setattr(evaluate, 'gallery_plot', lambda *a, **k: None)
  monkeypatch.setattr(evaluate, '_class_names', lambda cfg: None)
  (tmp_path / 'eval').mkdir()
  evaluate.evaluate_run(str(tmp_path), str(tmp_path / 'eval'), random_init=True)
  assert seen['bn_batches'] is (natural if batches else None)
