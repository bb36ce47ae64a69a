"""results.json / results.md files and the compare() table."""

import json

import pytest

from jaxvssl.evaluation import reports


def test_write_results_parseable(tmp_path):
  j, m = reports.write_results(
    tmp_path / 'lp',
    {'linear_probe/clip_top1': 0.5, 'linear_probe/video_top1': 0.625},
    protocol='linear_probe',
    run_name='runA',
    details={'x': 1},
  )
  payload = reports.read_results(j)
  assert payload == {
    'run': 'runA',
    'protocol': 'linear_probe',
    'metrics': {'linear_probe/clip_top1': 0.5, 'linear_probe/video_top1': 0.625},
    'details': {'x': 1},
  }
  md = open(m).read().splitlines()
  assert md[0] == '## linear_probe: runA'
  assert '| linear_probe/video_top1 | 62.5 |' in md


def test_compare_table(tmp_path):
  a = tmp_path / 'runA'
  reports.write_results(
    a / 'retrieval',
    {f'retrieval/R@{k}': v for k, v in zip((1, 5, 10, 20, 50), (0.1, 0.2, 0.3, 0.4, 0.5))},
    protocol='retrieval',
  )
  reports.write_results(
    a / 'linear',
    {'linear_probe/clip_top1': 0.4, 'linear_probe/video_top1': 0.45},
    protocol='linear_probe',
  )
  b = tmp_path / 'runB'
  reports.write_results(b, {'retrieval/R@1': 0.123, 'shuffle/video_drop': 0.05}, protocol='mixed')
  out = tmp_path / 'table.md'
  table = reports.compare([a, b / 'results.json'], out)
  assert out.read_text() == table
  lines = table.strip().splitlines()
  assert lines[0] == (
    '| run | R@1 | R@5 | R@10 | R@20 | R@50 | Linear clip | Linear video | '
    'Finetune clip | Finetune video | Shuffle drop clip | Shuffle drop video |'
  )
  assert lines[2] == '| runA | 10.0 | 20.0 | 30.0 | 40.0 | 50.0 | 40.0 | 45.0 | - | - | - | - |'
  assert lines[3] == '| runB | 12.3 | - | - | - | - | - | - | - | - | - | 5.0 |'
  assert len(lines) == 4


def test_compare_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='no results.json'):
    reports.compare([tmp_path])
  reports.write_results(tmp_path / 'x' / 'a', {'retrieval/R@1': 0.1}, protocol='retrieval')
  reports.write_results(tmp_path / 'x' / 'b', {'retrieval/R@1': 0.2}, protocol='retrieval')
  with pytest.raises(ValueError, match='differs'):
    reports.compare([tmp_path / 'x'])
  (tmp_path / 'bad.json').write_text(json.dumps({'nope': 1}))
  with pytest.raises(ValueError, match='bad.json'):
    reports.compare([tmp_path / 'bad.json'])


def test_average_splits(tmp_path):
  for i, (r1, lp) in enumerate([(0.2, 0.5), (0.4, 0.6), (0.3, None)]):
    m = {'retrieval/R@1': r1}
    if lp is not None:
      m['linear_probe/video_top1'] = lp
    reports.write_results(tmp_path / f'split{i + 1}', m, protocol='x')
  out = reports.average_splits(
    [tmp_path / f'split{i}' for i in (1, 2, 3)], tmp_path / 'avg', run_name='method'
  )
  assert out == pytest.approx({'retrieval/R@1': 0.3})
  payload = reports.read_results(tmp_path / 'avg' / 'results.json')
  assert payload['details']['skipped'] == ['linear_probe/video_top1']
  assert payload['details']['std']['retrieval/R@1'] == pytest.approx((0.02 / 3) ** 0.5)
  assert '| method | 30.0 |' in reports.compare([tmp_path / 'avg' / 'results.json'])
