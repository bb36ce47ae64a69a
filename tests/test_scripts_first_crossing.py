"""Tests of scripts/first_crossing.py (first logged step above a threshold, per run and row)."""

import importlib.util
import json
import os

import pytest

_SPEC = importlib.util.spec_from_file_location(
  'first_crossing', os.path.join(os.path.dirname(__file__), '..', 'scripts', 'first_crossing.py')
)
first_crossing = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(first_crossing)


def _write_run(path, values, metric='similarity/tq_tk'):
  os.makedirs(path)
  with open(os.path.join(path, 'metrics.jsonl'), 'w') as f:
    for i, v in enumerate(values):
      f.write(json.dumps({'step': 10 * (i + 1), 'loss': 1.0, metric: v}) + '\n')
      f.write(json.dumps({'step': 10 * (i + 1), 'monitor/x': 0.0}) + '\n')  # no metric: skipped


def test_first_crossing_of_one_run(tmp_path):
  _write_run(tmp_path / 'a', [0.5, 0.995, 0.98, 0.999])
  hit = first_crossing.first_crossing(
    str(tmp_path / 'a' / 'metrics.jsonl'), 'similarity/tq_tk', 0.99
  )
  assert hit == {'step': 20, 'value': 0.995, 'final': 0.999}
  _write_run(tmp_path / 'b', [0.5, 0.9])
  hit = first_crossing.first_crossing(
    str(tmp_path / 'b' / 'metrics.jsonl'), 'similarity/tq_tk', 0.99
  )
  assert hit == {'step': None, 'value': None, 'final': 0.9}
  with pytest.raises(ValueError, match='no logged values'):
    first_crossing.first_crossing(str(tmp_path / 'b' / 'metrics.jsonl'), 'other', 0.99)


def test_rows_summarise_the_seeds_that_crossed(tmp_path, capsys):
  _write_run(tmp_path / 'row' / 'seed0', [0.995])  # step 10
  _write_run(tmp_path / 'row' / 'seed1', [0.5, 0.5, 0.995])  # step 30
  _write_run(tmp_path / 'row' / 'seed2', [0.5])  # never
  assert first_crossing.main([str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert '| row/seed2 | never | - | 0.5000 |' in out
  assert '| row | 2/3 | 20 ± 14 | 0.8300 ± 0.2858 |' in out
  assert first_crossing.main([str(tmp_path / 'empty')]) == 2
