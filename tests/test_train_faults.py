"""Fault injection into the training loop: signals, corrupt checkpoints, lost storage, a second
writer, a changed config on resume, stale metrics, and the exit code of each error (tiny configs)."""

import json
import os
import shutil
import signal

import jax
import numpy as np
import pytest

from jaxvssl import cli, errors, methods, train
from jaxvssl import workdir as workdir_lib
from tests import helpers

DEVICES = jax.devices()[:1]


def _run(config, workdir, stop_after=None, on_batch=None, **kwargs):
  """train_and_evaluate on fake batches; `on_batch(step)` runs before batch `step` is handed out."""
  method = methods.build(config, 1)

  def batches(start):
    for step, batch in enumerate(helpers.fake_batches(config, method, start), start):
      if on_batch is not None:
        on_batch(step)
      yield batch

  return train.train_and_evaluate(
    config, str(workdir), devices=DEVICES, stop_after_steps=stop_after, batches_fn=batches, **kwargs
  )


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return {r['step']: r['loss'] for r in map(json.loads, f) if 'loss' in r}


def _assert_same_state(a, b):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """The uninterrupted reference run: 6 steps, checkpoints every 2."""
  config = helpers.tiny_config(num_steps=6)
  workdir = tmp_path_factory.mktemp('straight')
  return config, _run(config, workdir), _losses(workdir)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_checkpoint_and_resume_is_identical(straight, tmp_path, signum):
  config, reference, reference_losses = straight

  def send_signal(step):
    if step == 2:  # batch 2 is fetched after step 2 ends: step 3 still runs, then the loop stops
      os.kill(os.getpid(), signum)

  with pytest.raises(errors.TrainingInterrupted, match=r'at step 3; saved .*3; rerun') as info:
    _run(config, tmp_path, on_batch=send_signal)
  assert info.value.signum == signum
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['2', '3']  # step 3 saved although 3 % 2
  resumed = _run(config, tmp_path)
  _assert_same_state(reference.params, resumed.params)
  assert _losses(tmp_path) == reference_losses


@pytest.mark.parametrize('damage', ['truncate_files', 'empty_directory'])
def test_corrupt_latest_checkpoint_falls_back_and_is_named(straight, tmp_path, capsys, damage):
  config, reference, reference_losses = straight
  _run(config, tmp_path, stop_after=4)
  latest = tmp_path / 'checkpoints' / '4'
  if damage == 'truncate_files':
    for root, _, files in os.walk(latest):
      for name in files:
        open(os.path.join(root, name), 'w').close()
  else:
    shutil.rmtree(latest)
    latest.mkdir()
  resumed = _run(config, tmp_path)
  out = capsys.readouterr().out
  assert 'checkpoint step 4 is corrupt' in out and 'corrupt-4-0' in out
  assert (tmp_path / 'checkpoints' / 'corrupt-4-0').exists()  # set aside, never deleted
  _assert_same_state(reference.params, resumed.params)
  assert _losses(tmp_path) == reference_losses


def test_every_checkpoint_corrupt_is_named_not_a_config_mismatch(tmp_path):
  config = helpers.tiny_config(num_steps=4)
  _run(config, tmp_path, stop_after=2)
  for root, _, files in os.walk(tmp_path / 'checkpoints'):
    for name in files:
      open(os.path.join(root, name), 'w').close()
  with pytest.raises(errors.CorruptCheckpointError, match=r'no checkpoint in .* can be restored'):
    _run(config, tmp_path)


def test_lost_checkpoint_storage_stops_promptly_naming_the_last_good_checkpoint(tmp_path):
  config = helpers.tiny_config(num_steps=6)
  checkpoints = tmp_path / 'checkpoints'

  def lose_storage(step):
    if step == 2:  # after checkpoint 2: the directory becomes a plain file (fails even for root)
      shutil.rmtree(checkpoints)
      checkpoints.write_text('not a directory')

  with pytest.raises(errors.CheckpointWriteError, match=r'checkpoint.*failed.*last good'):
    _run(config, tmp_path, on_batch=lose_storage)


def test_unwritable_workdir_fails_at_start(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(errors.WorkdirError, match='not writable'):
    _run(helpers.tiny_config(), blocker / 'run')


def test_a_second_training_on_the_same_workdir_is_refused(tmp_path):
  with workdir_lib.lock(str(tmp_path)):
    with pytest.raises(
      errors.WorkdirError, match=rf'in use by another training \(pid {os.getpid()}'
    ):
      _run(helpers.tiny_config(), tmp_path)
  _run(helpers.tiny_config(num_steps=2), tmp_path)  # released: the next training may start


def test_config_change_on_resume_is_refused_then_allowed_and_recorded(tmp_path):
  config = helpers.tiny_config(num_steps=4)
  _run(config, tmp_path, stop_after=2)
  changed = helpers.tiny_config(num_steps=4, **{'optim.base_learning_rate': 0.02})
  with pytest.raises(
    errors.ResumeMismatchError, match=r'optim\.base_learning_rate: 0\.01 -> 0\.02'
  ):
    _run(changed, tmp_path)
  _run(changed, tmp_path, allow_config_change=True)
  with open(tmp_path / 'config_history.jsonl') as f:
    history = [json.loads(line) for line in f]
  assert [h['start_step'] for h in history] == [0, 2]
  assert history[0]['changed'] == [] and 'optim.base_learning_rate' in history[1]['changed'][0]
  assert history[1]['config']['optim']['base_learning_rate'] == 0.02
  with open(tmp_path / 'config.json') as f:
    assert json.load(f)['optim']['base_learning_rate'] == 0.02


def test_a_fresh_start_drops_stale_metrics(tmp_path):
  """A run killed before its first checkpoint left metrics lines; the restart replaces them."""
  (tmp_path / 'metrics.jsonl').write_text(json.dumps({'step': 1, 'loss': 123.0}) + '\n')
  _run(helpers.tiny_config(num_steps=2), tmp_path)
  assert _losses(tmp_path)[1] != 123.0 and list(_losses(tmp_path)) == [1, 2]


@pytest.mark.parametrize(
  'error, code',
  [
    (errors.ConfigError('config.batch_size=6: must be divisible'), 2),
    (errors.WorkdirError('workdir runs/x is in use by another training (pid 1)'), 2),
    (errors.ResumeMismatchError('runs/x holds a run started with another config'), 2),
    (errors.CorruptCheckpointError('no checkpoint in runs/x can be restored'), 2),
    (errors.PretrainedWeightsError('frame-encoder run runs/f: does not exist'), 2),
    (errors.NonFiniteLossError('loss is not finite at step 3'), 3),
    (errors.CheckpointWriteError('saving checkpoint step 4 failed'), 4),
    (errors.TrainingInterrupted('interrupted by SIGTERM at step 3', signal.SIGTERM), 143),
    (errors.TrainingInterrupted('interrupted by SIGINT at step 3', signal.SIGINT), 130),
  ],
)
def test_cli_prints_one_line_and_the_documented_exit_code(monkeypatch, capsys, error, code):
  def fail(*args, **kwargs):
    raise error

  monkeypatch.setattr(train, 'train_and_evaluate', fail)
  assert cli.main(['train', '--config=configs/moco.py:tiny', '--workdir=unused']) == code
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and str(error) in err


def test_missing_data_set_is_named_before_training_starts(tmp_path):
  config = helpers.tiny_config(**{'data.data_dir': str(tmp_path / 'tfds')})
  with pytest.raises(errors.DataNotFoundError, match=r'synthetic_motion.*jaxvssl build-data'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()  # nothing was created


def test_evaluating_a_missing_checkpoint_step_lists_the_steps(tmp_path):
  from jaxvssl import runs  # pylint: disable=g-import-not-at-top

  with pytest.raises(errors.DataNotFoundError, match='is .* a jaxvssl run directory'):
    runs.load_run(str(tmp_path / 'nothing'))
  _run(helpers.tiny_config(num_steps=2), tmp_path)
  with pytest.raises(errors.DataNotFoundError, match=r'no checkpoint step 5; it has \[2\]'):
    runs.load_run(str(tmp_path), 5)
