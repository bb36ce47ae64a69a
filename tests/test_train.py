"""The training loop: sharded == single device, interrupt-and-resume, NaN guard, config I/O."""

import json
import os

import jax
import numpy as np
import pytest

from jaxvssl import config as config_lib, errors
from tests import helpers


_run = helpers.run_training


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return {r['step']: r['loss'] for r in map(json.loads, f) if 'loss' in r}


def test_sharded_step_equals_single_device(tmp_path):
  assert jax.device_count() >= 8, 'conftest must fake 8 CPU devices'
  config = helpers.tiny_config(num_steps=2)
  one = _run(config, tmp_path / 'one', jax.devices()[:1])
  eight = _run(config, tmp_path / 'eight', jax.devices()[:8])
  # Tolerance: the same math with reductions split over 8 shards; float32 reassociation only.
  np.testing.assert_allclose(
    list(_losses(tmp_path / 'one').values()),
    list(_losses(tmp_path / 'eight').values()),
    rtol=1e-5,
    atol=1e-5,
  )
  for a, b in zip(jax.tree_util.tree_leaves(one.params), jax.tree_util.tree_leaves(eight.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_interrupt_and_resume_equals_straight_run(tmp_path):
  config = helpers.tiny_config(num_steps=4)
  devices = jax.devices()[:1]
  straight = _run(config, tmp_path / 'straight', devices)
  _run(config, tmp_path / 'resumed', devices, stop_after=2)
  assert _losses(tmp_path / 'resumed').keys() == {1, 2}
  resumed = _run(config, tmp_path / 'resumed', devices)
  a, b = _losses(tmp_path / 'straight'), _losses(tmp_path / 'resumed')
  assert a.keys() == b.keys() == {1, 2, 3, 4}
  np.testing.assert_allclose([a[s] for s in a], [b[s] for s in a], rtol=1e-6)
  helpers.assert_train_states_equal(straight, resumed)
  # The queue, its pointer and the momentum encoder are part of what must survive.
  np.testing.assert_array_equal(straight.state['queue'].keys, resumed.state['queue'].keys)
  assert int(resumed.state['queue'].pointer) == int(straight.state['queue'].pointer)


def test_same_seed_same_losses(tmp_path):
  config = helpers.tiny_config(num_steps=2)
  _run(config, tmp_path / 'a', jax.devices()[:1])
  _run(config, tmp_path / 'b', jax.devices()[:1])
  assert _losses(tmp_path / 'a') == _losses(tmp_path / 'b')


def test_nan_stops_training_and_names_step_and_checkpoint(tmp_path):
  config = helpers.tiny_config(num_steps=4)
  with pytest.raises(errors.NonFiniteLossError) as info:
    # Batch index 2 is consumed by step 3 (steps count from 1).
    _run(config, tmp_path / 'nan', jax.devices()[:1], nan_at_step=2)
  message = str(info.value)
  assert 'step 3' in message
  assert os.path.join('checkpoints', '2') in message
  assert not os.path.exists(tmp_path / 'nan' / 'checkpoints' / '4')


def test_resolved_config_written_and_reloadable(tmp_path):
  config = helpers.tiny_config(num_steps=2)
  _run(config, tmp_path / 'cfg', jax.devices()[:1])
  reloaded = config_lib.config_from_json(str(tmp_path / 'cfg' / 'config.json'))
  assert reloaded.to_dict() == config.to_dict()


def test_resume_with_a_state_changing_config_names_the_key_and_keeps_config_json(tmp_path):
  config = helpers.tiny_config(num_steps=4)
  _run(config, tmp_path / 'run', jax.devices()[:1], stop_after=2)
  saved = (tmp_path / 'run' / 'config.json').read_text()
  changed = helpers.tiny_config(num_steps=4, **{'model.input_mode': 'residual'})
  with pytest.raises(
    errors.ResumeMismatchError, match=r"model\.input_mode: 'rgb' -> 'residual'.*new --workdir"
  ):
    _run(changed, tmp_path / 'run', jax.devices()[:1])
  assert (tmp_path / 'run' / 'config.json').read_text() == saved
