"""jaxvssl.metrics: the NaN guard's step finder, the dead-network warning, metrics.jsonl on resume."""

import json
import math

import numpy as np

from jaxvssl import metrics


def test_first_non_finite_names_the_first_bad_step():
  assert metrics.first_non_finite([10, 20, 30], np.array([1.0, math.nan, math.inf])) == 20
  assert metrics.first_non_finite([10, 20], np.array([1.0, 2.0])) is None


def test_dead_network_warning_only_for_an_exactly_zero_gradient():
  line = metrics.dead_network_warning(7, {'grad_norm': 0.0, 'loss': 6.9})
  assert line.startswith('[jaxvssl] warning:') and 'step 7' in line and 'config.optim' in line
  assert metrics.dead_network_warning(7, {'grad_norm': 1e-9}) is None


def test_jsonl_writer_keeps_only_steps_up_to_the_resumed_one(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  path.write_text(''.join(json.dumps({'step': s, 'loss': s}) + '\n' for s in (1, 2, 3, 4)))
  metrics.JsonlWriter(str(path), resume_step=2).close()
  assert [json.loads(line)['step'] for line in path.read_text().splitlines()] == [1, 2]
  metrics.JsonlWriter(str(path), resume_step=0).close()  # a fresh start keeps nothing
  assert path.read_text() == ''
