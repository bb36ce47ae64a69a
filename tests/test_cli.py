"""End to end through the real TFDS data set, pipeline, CLI and evaluation (tiny sizes)."""

import json
import os

import numpy as np
import pytest

from jaxvssl import cli

TINY_RUN = [
  '--config.data.num_frames=4',
  '--config.data.stride=2',
  '--config.data.crop_size=16',
  '--config.data.eval_resize_short_side=18',
  '--config.batch_size=8',
  '--config.num_steps=3',
  '--config.optim.warmup_steps=1',
  '--config.log_every_steps=1',
  '--config.checkpoint_every_steps=3',
  '--config.moco.queue_size=32',
  '--config.moco.head_hidden_dim=16',
  '--config.evaluation.num_clips=2',
  '--config.evaluation.batch_size=8',
  '--config.progress_bar=false',
]


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  assert cli.main(['build-data', '--data_dir', data_dir, '--variant', 'tiny']) == 0
  return data_dir


def test_train_evaluate_compare_through_the_cli(tiny_data, tmp_path, capsys):
  workdir = str(tmp_path / 'moco')
  data = ['--config.data.name=synthetic_motion/tiny', f'--config.data.data_dir={tiny_data}']
  assert (
    cli.main(['train', '--config=configs/moco.py:tiny', f'--workdir={workdir}', *data, *TINY_RUN])
    == 0
  )
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  assert [r['step'] for r in records] == [1, 2, 3]
  assert all(0 <= r['perf/data_wait_fraction'] <= 1 for r in records)
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '3'))

  out = str(tmp_path / 'eval')
  assert cli.main(['evaluate', f'--workdir={workdir}', f'--out={out}']) == 0
  summary = json.load(open(os.path.join(out, 'summary.json')))
  for key in (
    'retrieval/R@1',
    'retrieval/R@50',
    'linear_probe/clip_top1',
    'linear_probe/video_top1',
    'shuffle/clip_drop',
  ):
    assert 0.0 <= summary['metrics'][key] <= 1.0 or key.startswith('shuffle'), key
  # Pretext diagnostics on held-out clips: MoCo's own loss metrics on its views of test videos.
  assert 0.0 <= summary['metrics']['pretext/contrastive_accuracy'] <= 1.0
  assert np.isfinite(summary['metrics']['pretext/contrastive_loss'])
  held_out = json.load(open(os.path.join(out, 'pretext', 'results.json')))
  assert (
    held_out['metrics']['pretext/contrastive_loss']
    == summary['metrics']['pretext/contrastive_loss']
  )
  assert held_out['details']['split'] == 'test'
  rows = json.load(open(os.path.join(out, 'retrieval', 'retrieval_per_query.json')))
  assert len(rows) == 32  # every test video of synthetic_motion/tiny is a query: none dropped
  for png in ('retrieval_gallery.png', 'embedding_test.png'):
    with open(os.path.join(out, png), 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'

  random_out = str(tmp_path / 'eval_random')
  assert cli.main(['evaluate', f'--workdir={workdir}', '--random_init', f'--out={random_out}']) == 0
  random_summary = json.load(open(os.path.join(random_out, 'summary.json')))['metrics']
  assert 'pretext/contrastive_loss' in random_summary  # measured at initialisation too
  capsys.readouterr()
  assert (
    cli.main(['compare', random_out, out, '--out', str(tmp_path), '--names', 'random,moco']) == 0
  )
  table = capsys.readouterr().out
  assert '| random |' in table and '| moco |' in table
  assert os.path.exists(tmp_path / 'comparison.md') and os.path.exists(tmp_path / 'recall_at_k.png')


def test_resume_from_the_cli_is_a_no_op_when_finished(tiny_data, tmp_path):
  workdir = str(tmp_path / 'moco')
  args = [
    'train',
    '--config=configs/moco.py:tiny',
    f'--workdir={workdir}',
    '--config.data.name=synthetic_motion/tiny',
    f'--config.data.data_dir={tiny_data}',
    *TINY_RUN,
  ]
  assert cli.main(args) == 0
  assert cli.main(args) == 0  # resumes at step 3 of 3: nothing to do, nothing rewritten
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    assert [json.loads(line)['step'] for line in f] == [1, 2, 3]


def test_bad_config_key_exits_2_naming_the_key(capsys, tmp_path):
  assert (
    cli.main(
      [
        'train',
        '--config=configs/moco.py:tiny',
        f'--workdir={tmp_path}',
        '--config.moco.temprature=0.2',
      ]
    )
    == 2
  )
  assert 'config.moco.temprature' in capsys.readouterr().err


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path, capsys):
  """The README's main job, on the tiny data set and a few steps."""
  assert (
    cli.main(
      [
        'demo',
        '--workdir',
        str(tmp_path / 'demo'),
        '--data_dir',
        str(tmp_path / 'tfds'),
        '--variant',
        'tiny',
        *TINY_RUN,
      ]
    )
    == 0
  )
  out = capsys.readouterr().out
  assert '| random init |' in out and 'pretrained |' in out
  assert os.path.exists(tmp_path / 'demo' / 'loss_curves.png')
