"""Run-level evaluation (`jaxvssl.evaluate`): finetuning a run end to end on a built data set."""

import json

import numpy as np
import pytest

from jaxvssl import evaluate
from jaxvssl.datasets.builders import synthetic_motion
from tests.helpers import tiny_config


@pytest.mark.slow
def test_finetune_run_end_to_end_on_synthetic_motion(tmp_path):
  """finetune_run on a built synthetic_motion/tiny (random init, 1 epoch): ~2-3 min on 2 cores."""
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
  )
  assert (
    0.0 <= metrics['finetune/clip_top1'] <= 1.0 and 0.0 <= metrics['finetune/video_top1'] <= 1.0
  )
  assert np.isfinite(metrics['finetune/final_train_loss'])
  payload = json.loads((tmp_path / 'ft' / 'results.json').read_text())
  assert payload['details']['total_steps'] == 64 // 4  # synthetic_motion/tiny: 64 train videos
  assert len((tmp_path / 'ft' / 'metrics.jsonl').read_text().splitlines()) == 16
