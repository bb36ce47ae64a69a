"""`jaxvssl ablate`: definition files, the plan, resume, failures, mean ± std, results files.

The fast tests inject a fake `run_command` that plays `jaxvssl train` / `evaluate` (it writes
metrics.jsonl and eval/summary.json with known values), so no JAX training runs; the one slow test
runs a 2-row x 2-seed MoCo ablation for real through the command line.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from jaxvssl import ablate, cli, errors
from jaxvssl import config as config_lib
from jaxvssl.ablate import aggregate, planning, provenance, records, report
from jaxvssl.ablate import command as ablate_command
from tests.test_cli import TINY_RUN

REPO_ROOT = Path(__file__).parents[1]
MOCO = f'{REPO_ROOT}/configs/moco.py:tiny'
MACHINE = {
  'cpu': 'test cpu',
  'cores': 2,
  'python': '3',
  'jax': '0',
  'backend': 'cpu',
  'devices': 1,
  'device_kind': 'cpu',
}
# R@1 of each (row, seed) that the fake evaluation reports.
R1 = {
  ('a', 0): 0.10,
  ('a', 1): 0.25,
  ('a', 2): 0.40,
  ('b', 0): 0.30,
  ('b', 1): 0.50,
  ('b', 2): 0.20,
  ('random_init', 0): 0.05,
  ('random_init', 1): 0.07,
  ('random_init', 2): 0.06,
  ('a', 5): 0.15,  # a seed outside the files' (0, 1, 2)
  ('b', 5): 0.35,
  ('random_init', 5): 0.04,
}


def write_ablation(tmp_path: Path, body: str, name: str = 'abl.py') -> str:
  path = tmp_path / name
  path.write_text(textwrap.dedent(body), encoding='utf-8')
  return str(path)


def two_rows(tmp_path: Path, random_init: bool = True, extra: str = '') -> str:
  return write_ablation(
    tmp_path,
    f"""\
    from jaxvssl.ablate import Ablation, Row

    def get_ablation():
      return Ablation(
        name='two',
        rows=(
          Row('a', {MOCO!r}, ('moco.temperature=0.2',), 'Row A'),
          Row('b', {MOCO!r}, ('moco.temperature=0.5',), 'Row B'),
        ),
        overrides=('data.name=synthetic_motion/tiny', 'data.data_dir={tmp_path}/tfds'),
        random_init={random_init},
        {extra}
      )
    """,
  )


def _args(argv) -> dict[str, str]:
  return dict(a[2:].split('=', 1) for a in argv if a.startswith('--') and '=' in a)


class FakeJaxvssl:
  """Plays `python -m jaxvssl train | evaluate | build-data`; records every call.

  `fail[(command, row, seed)] = exit status` makes that call fail after writing a log line.
  """

  def __init__(self, fail=None):
    self.calls: list[list[str]] = []
    self.fail = dict(fail or {})

  def __call__(self, argv, log):
    argv = list(argv)
    if argv[0] == 'env':  # a row's environment: `env NAME=value ... python -m jaxvssl ...`
      argv = argv[1 + sum(1 for a in argv[1:] if '=' in a and not a.startswith('-')) :]
    self.calls.append(argv)
    assert argv[1:3] == ['-m', 'jaxvssl'], argv
    command, args = argv[3], _args(argv)
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, 'a') as f:
      f.write(f'fake {command}\n')
    if command == 'build-data':
      return self.fail.get(('build-data',), 0)
    if command == 'train':
      workdir = args['workdir']
      row, seed = os.path.basename(os.path.dirname(workdir)), int(args['config.seed'])
    else:
      pair = os.path.dirname(args['out'])
      row, seed = os.path.basename(os.path.dirname(pair)), int(os.path.basename(pair)[4:])
    code = self.fail.get((command, row, seed), 0)
    if code:
      with open(log, 'a') as f:
        f.write('Traceback (most recent call last):\nRuntimeError: the fake failed\n')
      return code
    if command == 'train':
      os.makedirs(workdir, exist_ok=True)
      overrides = [a.removeprefix('--config.') for a in argv if a.startswith('--config.')]
      config_lib.save_config(config_lib.load_config(args['config'], overrides), workdir)
      os.makedirs(os.path.join(workdir, 'checkpoints', '10'), exist_ok=True)
      with open(os.path.join(workdir, 'checkpoints', '10', 'metadata.json'), 'w') as f:
        json.dump({'weights': 'heavy'}, f)  # a checkpoint's own json: never recorded
      with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
        for step in range(1, 11):  # loss = step + seed: the last 5 average 8 + seed
          record = {'step': step, 'loss': step + seed, 'perf/clips_per_sec': 100.0 * step}
          f.write(json.dumps(record) + '\n')
        f.write(json.dumps({'step': 10, 'monitor/R@1': 0.99}) + '\n')  # not a training record
      return 0
    assert command == 'evaluate', argv
    if row == 'random_init':
      assert '--random_init' in argv
      assert args['workdir'].endswith(os.path.join('a', f'seed{seed}'))
    os.makedirs(args['out'], exist_ok=True)
    with open(os.path.join(args['out'], 'per_query.json'), 'w') as f:
      f.write(' ' * (records.RECORD_MAX_BYTES + 1))  # per-query details: too big to record
    # Held-out pretext diagnostics (raw numbers, as `jaxvssl evaluate` writes them).
    metrics = {
      'retrieval/R@1': R1[(row, seed)],
      'linear_probe/video_top1': 0.5,
      'pretext/loss': 2.0 + seed,
    }
    with open(os.path.join(args['out'], 'summary.json'), 'w') as f:
      json.dump({'run': row, 'metrics': metrics}, f)
    return 0

  def commands(self, command: str) -> list[list[str]]:
    return [c for c in self.calls if c[3] == command]


def run(path, fake, **kwargs):
  kwargs.setdefault('out', str(Path(path).parent / 'out'))
  return ablate.run_ablation(path, run_command=fake, machine=lambda: MACHINE, **kwargs)


# --- mean ± std --------------------------------------------------------------------------------


def test_mean_std_is_numpys_sample_std_and_has_no_std_for_one_seed():
  values = {0: 0.1, 1: 0.25, 2: 0.4, 5: 0.33}
  stats = aggregate.mean_std(values)
  array = np.array([0.1, 0.25, 0.4, 0.33])
  assert stats['mean'] == pytest.approx(np.mean(array), abs=1e-15)
  assert stats['std'] == pytest.approx(np.std(array, ddof=1), abs=1e-15)
  assert stats['n'] == 4 and stats['values'] == {'0': 0.1, '1': 0.25, '2': 0.4, '5': 0.33}
  single = aggregate.mean_std({3: 0.5})
  assert single == {'mean': 0.5, 'std': None, 'n': 1, 'values': {'3': 0.5}}
  assert report.format_cell('retrieval/R@1', stats, 4) == (
    f'{100 * np.mean(array):.1f} ± {100 * np.std(array, ddof=1):.1f}'
  )
  assert report.format_cell('retrieval/R@1', single, 1) == '50.0'
  assert report.format_cell('retrieval/R@1', single, 3) == '50.0 (n=1)'
  assert report.format_cell('train/loss', {'mean': 8.5, 'std': 1.0, 'n': 2}, 2) == '8.5 ± 1'
  assert report.format_cell('pretext/order_accuracy', single, 1) == '0.5'  # raw, not percent


def test_a_difference_counts_only_beyond_the_larger_std_and_needs_two_seeds():
  low = aggregate.mean_std({0: 0.10, 1: 0.12, 2: 0.14})  # std 0.02
  high = aggregate.mean_std({0: 0.30, 1: 0.40, 2: 0.50})  # std 0.10
  near = aggregate.mean_std({0: 0.20, 1: 0.22, 2: 0.24})  # +0.10 above low, std 0.02
  up = aggregate.difference(low, high)
  assert up['delta'] == pytest.approx(0.28) and up['spread'] == pytest.approx(0.10)
  assert up['verdict'] == 'higher' and report.format_difference(up) == '+28.0 > 10.0: higher'
  down = aggregate.difference(high, low)
  assert down['verdict'] == 'lower' and report.format_difference(down) == '-28.0 > 10.0: lower'
  beyond = aggregate.difference(near, high)  # +0.18 against the spread 0.10 (the larger std)
  assert beyond['verdict'] == 'higher'
  same = aggregate.difference(high, aggregate.mean_std({0: 0.30, 1: 0.45, 2: 0.40}))
  assert same['verdict'] == 'no difference' and same['spread'] == pytest.approx(0.10)
  assert report.format_difference(same).endswith('<= 10.0: no difference')
  one = aggregate.difference(low, aggregate.mean_std({0: 0.9}))
  assert one == {'delta': pytest.approx(0.78), 'spread': None, 'verdict': 'too few seeds'}
  assert report.format_difference(one) == '+78.0 (too few seeds)'


def test_full_run_aggregates_every_metric_over_seeds(tmp_path):
  path = two_rows(tmp_path)
  fake = FakeJaxvssl()
  results = run(path, fake, command='jaxvssl ablate abl.py')
  assert results['exit_code'] == 0 and results['status'] == 'complete'
  assert list(results['rows']) == ['random_init', 'a', 'b']
  for row in ('a', 'b', 'random_init'):
    values = [R1[(row, s)] for s in (0, 1, 2)]
    stats = results['rows'][row]['metrics']['retrieval/R@1']
    assert stats['mean'] == pytest.approx(np.mean(values))
    assert stats['std'] == pytest.approx(np.std(values, ddof=1))
    assert stats['values'] == {str(s): R1[(row, s)] for s in (0, 1, 2)}
  loss = results['rows']['a']['metrics']['train/loss']
  assert loss['values'] == {'0': 8.0, '1': 9.0, '2': 10.0} and loss['std'] == pytest.approx(1.0)
  keys = set(results['rows']['a']['metrics'])
  assert not any(k.startswith(('train/perf/', 'train/monitor/', 'train/step')) for k in keys)
  assert not any(k.startswith('train/') for k in results['rows']['random_init']['metrics'])

  # Seeds 0, 1, 2 of each row, seed by seed; data built first; the seed and overrides passed.
  (build,) = fake.commands('build-data')
  assert build[4:] == ['--data_dir', f'{tmp_path}/tfds', '--variant', 'tiny']
  assert fake.calls[0] == build
  trains = fake.commands('train')
  assert [(_args(c)['workdir'], _args(c)['config.seed']) for c in trains] == [
    (str(tmp_path / 'out' / row / f'seed{s}'), str(s)) for s in (0, 1, 2) for row in ('a', 'b')
  ]
  assert _args(trains[1])['config.moco.temperature'] == '0.5'
  assert _args(trains[1])['config.data.name'] == 'synthetic_motion/tiny'
  assert results['rows']['b']['overrides'] == [
    'data.name=synthetic_motion/tiny',
    f'data.data_dir={tmp_path}/tfds',
    'moco.temperature=0.5',
  ]

  on_disk = json.loads((tmp_path / 'out' / 'results.json').read_text())
  assert on_disk['rows'] == results['rows'] and on_disk['machine'] == MACHINE
  assert on_disk['command'] == 'jaxvssl ablate abl.py'
  assert re.fullmatch(r'[0-9a-f]{40}(-dirty)?|unknown.*', on_disk['git_commit'])
  md = (tmp_path / 'out' / 'results.md').read_text()
  assert '- command: `jaxvssl ablate abl.py`' in md and 'test cpu, 2 cores' in md
  a = [np.mean([0.1, 0.25, 0.4]) * 100, np.std([0.1, 0.25, 0.4], ddof=1) * 100]
  assert f'| Row A | 3/3 | {a[0]:.1f} ± {a[1]:.1f} | ' in md
  assert '| random init | 3/3 |' in md
  assert '| Row B | 2 | ok | 20.0 | 50.0 |' in md  # per-seed table: seed 2 of row b
  # Each row against the row above: a (25.0 ± 15.0) beats random init (6.0 ± 1.0) by more than
  # the spread 15.0; b (33.3 ± 15.3) against a: +8.3 within 15.3, no difference.
  diffs = results['differences']
  assert list(diffs) == ['a', 'b'] and diffs['a']['against'] == 'random_init'
  assert diffs['a']['metrics']['retrieval/R@1']['verdict'] == 'higher'
  assert diffs['b']['metrics']['retrieval/R@1']['verdict'] == 'no difference'
  assert '| Row A vs random init | +19.0 > 15.0: higher |' in md
  assert '| Row B vs Row A | +8.3 <= 15.3: no difference |' in md
  # Diagnostics: train/loss of the seeds = 8, 9, 10 next to the held-out pretext/loss = 2, 3, 4
  # (raw, not percent); random init has only the held-out one.
  assert '| run | loss | pretext/loss |' in md
  assert '| Row A | 9 ± 1 | 3 ± 1 |' in md and '| random init | - | 3 ± 1 |' in md


# --- resume ------------------------------------------------------------------------------------


def test_results_written_mid_run_say_running_not_complete(tmp_path):
  """results.json is rewritten after every finished pair; until the last, its status is running."""
  path = two_rows(tmp_path)
  fake = FakeJaxvssl()
  seen = []

  def spy(argv, log):
    on_disk = tmp_path / 'out' / 'results.json'
    if argv[3] == 'train' and on_disk.exists():
      seen.append(json.loads(on_disk.read_text())['status'])
    return fake(argv, log)

  results = run(path, spy)
  assert seen and set(seen) == {'running'}
  assert results['status'] == 'complete'
  assert json.loads((tmp_path / 'out' / 'results.json').read_text())['status'] == 'complete'


def test_resume_skips_finished_pairs_without_calling_the_runner(tmp_path):
  path = two_rows(tmp_path)
  first = FakeJaxvssl()
  run(path, first, seeds=[0, 1])
  # Pretend b/seed1 never finished its evaluation.
  os.remove(tmp_path / 'out' / 'b' / 'seed1' / 'eval' / 'summary.json')
  second = FakeJaxvssl()
  results = run(path, second, seeds=[0, 1])
  workdirs = {_args(c)['workdir'] for c in second.calls if c[3] != 'build-data'}
  assert workdirs == {str(tmp_path / 'out' / 'b' / 'seed1')}  # train (resumes) + evaluate
  assert [c[3] for c in second.calls] == ['build-data', 'train', 'evaluate']
  statuses = {(p['name'], p['seed']): p['status'] for p in results['pairs']}
  assert statuses[('b', 1)] == 'done' and statuses[('a', 0)] == 'skipped'
  assert results['rows']['a']['metrics']['retrieval/R@1']['n'] == 2
  # Everything finished: nothing runs at all, not even the data build.
  third = FakeJaxvssl()
  again = run(path, third, seeds=[0, 1])
  assert third.calls == [] and again['rows'] == results['rows']


def _tree(directory: Path) -> set[str]:
  return {str(p.relative_to(directory)) for p in directory.rglob('*') if p.is_file()}


def test_record_keeps_light_files_and_restores_them_into_a_fresh_out(tmp_path):
  """--record: a table survives the loss of OUT (a machine that went away) and resumes."""
  path = two_rows(tmp_path)
  record = tmp_path / 'record'
  first = run(path, FakeJaxvssl(), seeds=[0], record=str(record))
  recorded = _tree(record)
  assert {
    'results.json',
    'results.md',
    'a/seed0/config.json',
    'a/seed0/metrics.jsonl',
    'a/seed0/eval/summary.json',
    'random_init/seed0/eval/summary.json',
  } <= recorded
  assert not [p for p in recorded if 'checkpoints' in p or p.endswith(('.log', 'per_query.json'))]
  assert not [p for p in recorded if p.endswith('.tmp')]
  table = json.loads((record / 'results.json').read_text())  # the file's 3 seeds, 1 finished
  assert (table['seeds'], table['status'], first['status']) == ([0, 1, 2], 'partial', 'complete')

  # OUT is lost; the next machine asks for one more seed: only seed 1 runs.
  out = tmp_path / 'out'
  for p in sorted(out.rglob('*'), reverse=True):
    p.unlink() if p.is_file() else p.rmdir()
  out.rmdir()
  fake = FakeJaxvssl()
  results = run(path, fake, seeds=[0, 1], record=str(record))
  seeds_run = {int(_args(c)['config.seed']) for c in fake.commands('train')}
  assert seeds_run == {1}
  random_inits = [_args(c)['out'] for c in fake.commands('evaluate') if '--random_init' in c]
  assert random_inits == [str(out / 'random_init' / 'seed1' / 'eval')]
  statuses = {(p['name'], p['seed']): p['status'] for p in results['pairs']}
  assert statuses[('a', 0)] == statuses[('random_init', 0)] == 'skipped'
  assert statuses[('a', 1)] == 'done'
  for key in ('train/loss', 'retrieval/R@1'):  # seed 0's numbers came back from the record
    values = results['rows']['a']['metrics'][key]['values']
    assert values['0'] == first['rows']['a']['metrics'][key]['values']['0'] and '1' in values
  assert 'a/seed1/eval/summary.json' in _tree(record)
  assert json.loads((record / 'results.json').read_text())['rows']['a']['ok'] == [0, 1]
  # Evaluations read this machine's data, not the data_dir of a restored config.json.
  data_dir = str(tmp_path / 'moved_data')
  seed2 = FakeJaxvssl()
  run(path, seed2, seeds=[2], rows=['a', 'random_init'], data_dir=data_dir, record=str(record))
  assert {_args(c)['config.data.data_dir'] for c in seed2.commands('evaluate')} == {data_dir}


def test_record_dry_run_says_what_it_would_restore_and_copies_nothing(tmp_path, capsys):
  path = two_rows(tmp_path, random_init=False)
  record = tmp_path / 'record'
  run(path, FakeJaxvssl(), seeds=[0], record=str(record), out=str(tmp_path / 'first'))
  capsys.readouterr()
  fake = FakeJaxvssl()
  result = run(path, fake, seeds=[0], record=str(record), dry_run=True)
  printed = capsys.readouterr().out
  assert fake.calls == [] and result['skipped'] == 2
  assert printed.count(f'# skipped (restored from {record})') == 4  # train + evaluate, 2 rows
  assert not (tmp_path / 'out').exists()


def test_collect_writes_the_finished_pairs_and_runs_nothing(tmp_path, capsys):
  """--collect: the table of what has finished (e.g. a record filled by several machines)."""
  path = two_rows(tmp_path)
  record = tmp_path / 'record'
  run(path, FakeJaxvssl(), seeds=[0], record=str(record), out=str(tmp_path / 'elsewhere'))
  out = tmp_path / 'fresh'
  code = cli.main(
    ['ablate', path, '--seeds', '0,1', '--record', str(record), '--out', str(out), '--collect']
  )
  assert code == 0
  results = json.loads((out / 'results.json').read_text())
  assert results['status'] == 'partial'
  assert (results['rows']['a']['n'], results['rows']['a']['n_total']) == (1, 2)
  assert results['rows']['a']['not_run'] == [1]
  assert json.loads((record / 'results.json').read_text())['seeds'] == [0, 1, 2]
  assert 'status: partial' in capsys.readouterr().out
  assert not (out / 'a' / 'seed1').exists() and not (out / 'build-data.log').exists()  # no run


def test_runners_sharing_a_record_each_write_the_table_of_everything_recorded(tmp_path):
  """Two machines, one record, each its own seeds (and a stray seed 5): whichever writes last,
  the record's table holds every recorded pair, never only the writer's seeds."""
  path = two_rows(tmp_path)
  record = tmp_path / 'record'
  run(path, FakeJaxvssl(), seeds=[0, 2], record=str(record), out=str(tmp_path / 'machine0'))
  run(path, FakeJaxvssl(), seeds=[5], rows=['a'], record=str(record), out=str(tmp_path / 'm5'))
  partial = json.loads((record / 'results.json').read_text())
  assert (partial['seeds'], partial['status']) == ([0, 1, 2, 5], 'partial')
  assert partial['rows']['a']['ok'] == [0, 2, 5] and partial['rows']['a']['not_run'] == [1]
  assert partial['rows']['b']['ok'] == [0, 2] and partial['rows']['b']['not_run'] == [1, 5]
  assert list(partial['rows']) == ['random_init', 'a', 'b']
  assert partial['rows']['random_init']['ok'] == [0, 2]
  assert not partial['stages'] and partial['recorded_in'] == str(record)
  mine = run(path, FakeJaxvssl(), seeds=[1], record=str(record), out=str(tmp_path / 'machine1'))
  assert mine['seeds'] == [1] and mine['rows']['b']['ok'] == [1]  # OUT: this run's seeds
  table = json.loads((record / 'results.json').read_text())
  assert table['status'] == 'partial' and table['rows']['b']['not_run'] == [5]
  assert table['rows']['random_init']['not_run'] == [5]
  values = table['rows']['b']['metrics']['retrieval/R@1']['values']
  assert values == {str(s): R1[('b', s)] for s in (0, 1, 2)}
  assert table['rows']['a']['metrics']['retrieval/R@1']['n'] == 4
  assert f'recorded in `{record}`' in (record / 'results.md').read_text()
  complete = run(path, FakeJaxvssl(), seeds=[5], record=str(record), out=str(tmp_path / 'm5'))
  assert complete['rows']['b']['ok'] == [5]
  assert json.loads((record / 'results.json').read_text())['status'] == 'complete'


def test_record_inside_out_is_a_config_error(tmp_path):
  path = two_rows(tmp_path)
  with pytest.raises(errors.ConfigError, match=r'--record .*must lie outside --out'):
    run(path, FakeJaxvssl(), record=str(tmp_path / 'out' / 'kept'))


# --- failures ----------------------------------------------------------------------------------


def test_a_failed_pair_is_reported_excluded_from_the_mean_and_the_rest_runs(tmp_path):
  path = two_rows(tmp_path, random_init=False)
  fake = FakeJaxvssl(fail={('train', 'b', 2): 3})
  results = run(path, fake, jobs=2)
  assert results['exit_code'] == ablate.EXIT_FAILED and results['status'] == 'failed'
  evaluated = {tuple(_args(c)['workdir'].split(os.sep)[-2:]) for c in fake.commands('evaluate')}
  assert evaluated == {
    (row, f'seed{s}') for row in ('a', 'b') for s in (0, 1, 2) if (row, s) != ('b', 2)
  }
  (failure,) = results['failures']
  assert (failure['name'], failure['seed'], failure['phase'], failure['exit_code']) == (
    'b',
    2,
    'train',
    3,
  )
  assert failure['log'] == str(tmp_path / 'out' / 'b' / 'seed2' / 'train.log')
  assert failure['tail'][-1] == 'RuntimeError: the fake failed'
  b = results['rows']['b']
  assert (b['n'], b['n_total'], b['failed']) == (2, 3, {'2': 'train exit 3'})
  stats = b['metrics']['retrieval/R@1']
  assert stats['n'] == 2 and set(stats['values']) == {'0', '1'}
  assert stats['mean'] == pytest.approx(np.mean([0.3, 0.5]))
  assert stats['std'] == pytest.approx(np.std([0.3, 0.5], ddof=1))
  md = (tmp_path / 'out' / 'results.md').read_text()
  assert '| Row B | 2/3, 1 failed: seed 2 (train exit 3) | 40.0 ± 14.1 |' in md
  assert '- b seed 2: train exit 3 (log ' in md and 'RuntimeError: the fake failed' in md
  assert '| Row B | 2 | failed: train exit 3 |' in md


def test_a_failed_stage_fails_the_rows_of_its_seed_only(tmp_path, capsys):
  path = write_ablation(
    tmp_path,
    f"""\
    from jaxvssl.ablate import Ablation, Row, Stage

    def get_ablation():
      return Ablation(
        name='staged',
        stages=(Stage('pre', {MOCO!r}),),
        rows=(Row('a', {MOCO!r}, ('data.data_dir={{stage:pre}}/x',)),),
        overrides=('data.name=synthetic_motion/tiny', 'data.data_dir={tmp_path}/tfds'),
        random_init=True,
        seeds=(0, 1),
      )
    """,
  )
  fake = FakeJaxvssl(fail={('train', 'pre', 1): 4})  # the stage's workdir: OUT/stages/pre/seed1
  results = run(path, fake, jobs=2)
  order = [(c[3], _args(c)['workdir']) for c in fake.calls if c[3] != 'build-data']
  out = tmp_path / 'out'
  assert order.index(('train', str(out / 'stages' / 'pre' / 'seed0'))) < order.index(
    ('train', str(out / 'a' / 'seed0'))
  )
  assert ('train', str(out / 'a' / 'seed1')) not in order  # its stage failed: never started
  assert results['rows']['a']['failed'] == {'1': 'stage pre seed 1: train exit 4'}
  assert results['rows']['a']['n'] == 1 and results['exit_code'] == ablate.EXIT_FAILED
  kinds = sorted((f['kind'], f['name'], f['seed']) for f in results['failures'])
  assert kinds == [('row', 'a', 1), ('stage', 'pre', 1)]
  # Random init of seed 1 would read a/seed1/config.json, which never came: not run (it used to
  # run and fail with "config.json does not exist").
  random_inits = [_args(c)['out'] for c in fake.commands('evaluate') if '--random_init' in c]
  assert random_inits == [str(out / 'random_init' / 'seed0' / 'eval')]
  pairs = {(p['name'], p['seed']): p['status'] for p in results['pairs']}
  assert pairs[('random_init', 0)] == 'done' and pairs[('random_init', 1)] == 'not_run'
  said = ''.join(capsys.readouterr())
  assert f'not running random_init seed 1: {out}/a/seed1/config.json does not exist' in said


def test_an_interrupted_child_is_not_averaged_and_not_a_success(tmp_path):
  path = two_rows(tmp_path, random_init=False)
  results = run(path, FakeJaxvssl(fail={('evaluate', 'a', 1): 130}), seeds=[0, 1])
  assert results['status'] == 'interrupted' and results['exit_code'] == ablate.EXIT_FAILED
  assert results['failures'] == [] and results['rows']['a']['not_run'] == [1]
  assert '| Row A | 1/2, 1 not run: seed 1 |' in (tmp_path / 'out' / 'results.md').read_text()


def test_a_failed_data_build_stops_before_any_training(tmp_path):
  path = two_rows(tmp_path)
  fake = FakeJaxvssl(fail={('build-data',): 1})
  with pytest.raises(errors.DataNotFoundError, match='build-data.log'):
    run(path, fake)
  assert [c[3] for c in fake.calls] == ['build-data']


def test_sigint_starts_nothing_new_and_exits_130(tmp_path):
  path = two_rows(tmp_path)
  fake = FakeJaxvssl()

  def interrupted(argv, log):
    if argv[3] == 'train':  # the first training: Ctrl-C arrives, the child saves and exits 130
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.5)
      return 130
    return fake(argv, log)

  before = signal.getsignal(signal.SIGINT)
  results = ablate.run_ablation(
    path, out=str(tmp_path / 'out'), run_command=interrupted, machine=lambda: MACHINE
  )
  assert results['exit_code'] == 130 and results['status'] == 'interrupted'
  assert [c[3] for c in fake.calls] == ['build-data']  # nothing started after the signal
  assert {p['status'] for p in results['pairs']} == {'interrupted', 'not_run'}
  assert results['failures'] == []
  assert '0/3, 3 not run' in (tmp_path / 'out' / 'results.md').read_text()
  assert signal.getsignal(signal.SIGINT) is before  # the runner's handler is gone again


# --- stages and placeholders -------------------------------------------------------------------


def test_stage_placeholders_are_replaced_by_the_stage_workdir_of_the_same_seed(tmp_path):
  path = write_ablation(
    tmp_path,
    """\
    from jaxvssl.ablate import Ablation, Row, Stage

    def get_ablation():
      return Ablation(
        name='cacl_like',
        stages=(Stage('frames', 'configs/frames.py:tiny'),),
        rows=(
          Row('full', 'configs/cacl.py:sdp_vmoco_t.tiny',
              ('cacl.frame_encoder_workdir={stage:frames}',)),
        ),
        overrides=('data.name=synthetic_motion/tiny',),
      )
    """,
  )
  ablation = ablate.load_ablation(path)
  out = str(tmp_path / 'out')
  tasks = planning.plan(ablation, out, [0, 2], ablation.rows, random_init=False, data_dir='/d')
  assert [t.key for t in tasks] == [
    ('stage', 'frames', 0),
    ('row', 'full', 0),
    ('stage', 'frames', 2),
    ('row', 'full', 2),
  ]
  full2 = tasks[3]
  assert full2.deps == (('stage', 'frames', 2),)
  args = _args(full2.phases[0].argv)
  assert args['config.cacl.frame_encoder_workdir'] == f'{out}/stages/frames/seed2'
  assert args['config.seed'] == '2' and args['config.data.data_dir'] == '/d'
  assert _args(tasks[2].phases[0].argv)['workdir'] == f'{out}/stages/frames/seed2'
  assert not any('{stage:' in a for t in tasks for p in t.phases for a in p.argv)
  assert full2.recorded_overrides[-2:] == (
    'cacl.frame_encoder_workdir={stage:frames}',
    'data.data_dir=/d',
  )


def test_a_stage_is_trained_only_for_the_rows_that_name_it(tmp_path):
  """Rows without `{stage:...}` do not wait for a stage; a stage no selected row names is skipped."""
  path = write_ablation(
    tmp_path,
    f"""\
    from jaxvssl.ablate import Ablation, Row, Stage

    def get_ablation():
      return Ablation(
        name='partly_staged',
        stages=(Stage('pre', {MOCO!r}),),
        rows=(
          Row('plain', {MOCO!r}, ('moco.temperature=0.2',)),
          Row('staged', {MOCO!r}, ('moco.temperature=0.5', 'init_from={{stage:pre}}')),
        ),
        overrides=('data.name=synthetic_motion/tiny', 'data.data_dir={tmp_path}/tfds'),
        seeds=(0,),
      )
    """,
  )
  ablation = ablate.load_ablation(path)
  tasks = planning.plan(ablation, str(tmp_path / 'out'), [0], ablation.rows, random_init=False)
  deps = {t.name: t.deps for t in tasks if t.kind == 'row'}
  assert deps == {'plain': (), 'staged': (('stage', 'pre', 0),)}

  fake = FakeJaxvssl()
  results = run(path, fake, rows=['plain'])
  assert [_args(c)['workdir'] for c in fake.commands('train')] == [
    str(tmp_path / 'out' / 'plain' / 'seed0')
  ]
  (stage,) = results['stages']
  assert stage['status'] == 'skipped'


def staged(tmp_path: Path, name: str, temperature: float) -> str:
  """An ablation `name` whose one row builds on a stage 'pre' (a MoCo run at `temperature`)."""
  return write_ablation(
    tmp_path,
    f"""\
    from jaxvssl.ablate import Ablation, Row, Stage

    def get_ablation():
      return Ablation(
        name={name!r},
        stages=(Stage('pre', {MOCO!r}, ('moco.temperature={temperature}',)),),
        rows=(Row('a', {MOCO!r}, ('init_from={{stage:pre}}',)),),
        overrides=('data.name=synthetic_motion/tiny', 'data.data_dir={tmp_path}/tfds'),
        seeds=(0,),
      )
    """,
    name=f'{name}.py',
  )


def test_ablations_sharing_a_stages_directory_train_an_identical_stage_once(tmp_path):
  shared = str(tmp_path / 'shared_stages')
  first, second = staged(tmp_path, 'first', 0.2), staged(tmp_path, 'second', 0.2)
  fake = FakeJaxvssl()
  run(first, fake, out=str(tmp_path / 'out1'), stages=shared)
  stage_workdir = os.path.join(shared, 'pre', 'seed0')
  trains = [_args(c)['workdir'] for c in fake.commands('train')]
  assert trains == [stage_workdir, str(tmp_path / 'out1' / 'a' / 'seed0')]
  assert not (tmp_path / 'out1' / 'stages').exists()
  fake.calls.clear()
  results = run(second, fake, out=str(tmp_path / 'out2'), stages=shared)
  # The stage is run again (train resumes it: a no-op once finished), in the same directory,
  # and the second ablation's row builds on it.
  trains = fake.commands('train')
  assert [_args(c)['workdir'] for c in trains] == [stage_workdir, str(tmp_path / 'out2/a/seed0')]
  assert _args(trains[1])['config.init_from'] == stage_workdir
  assert results['stages'][0]['dir'] == stage_workdir and results['exit_code'] == 0


def test_a_stage_directory_holding_another_config_fails_up_front_naming_the_key(tmp_path, capsys):
  shared = str(tmp_path / 'shared_stages')
  run(staged(tmp_path, 'first', 0.2), FakeJaxvssl(), out=str(tmp_path / 'out1'), stages=shared)
  other = staged(tmp_path, 'other', 0.5)
  argv = ['ablate', other, '--out', str(tmp_path / 'out2'), '--stages', shared]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert f"stage 'pre' seed 0: {shared}/pre/seed0 holds a run of another config" in err
  assert 'moco.temperature: 0.2 -> 0.5' in err and '--stages' in err and '\n' not in err
  assert not (tmp_path / 'out2' / 'a').exists()  # nothing ran
  # Its own --stages directory (here the default, OUT/stages) is fine.
  assert run(other, FakeJaxvssl(), out=str(tmp_path / 'out2'))['exit_code'] == 0


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path, capsys):
  path = two_rows(tmp_path)
  fake = FakeJaxvssl()
  result = run(path, fake, dry_run=True, seeds=[4], rows=['b', 'random_init'])
  assert fake.calls == [] and not (tmp_path / 'out').exists()
  printed = capsys.readouterr().out
  assert 'build-data' in printed and '--config.seed=4' in printed
  assert f'{tmp_path}/out/b/seed4' in printed and '--random_init' in printed
  trains = [line for line in printed.splitlines() if ' -m jaxvssl train ' in line]
  assert len(trains) == 1 and f'--workdir={tmp_path}/out/b/seed4 ' in trains[0]  # not row a...
  assert result['tasks'] == 2  # ...but random init still evaluates the first row's backbone


def test_a_rows_environment_prefixes_its_commands_and_the_random_init_of_the_first_row(tmp_path):
  path = write_ablation(
    tmp_path,
    f"""\
    from jaxvssl.ablate import Ablation, Row

    def get_ablation():
      return Ablation(
        name='env',
        rows=(Row('a', {MOCO!r}, env=('JAXVSSL_CONV_IMPL=xla',)), Row('b', {MOCO!r})),
        random_init=True,
      )
    """,
  )
  ablation = ablate.load_ablation(path)
  out = str(tmp_path / 'out')
  tasks = planning.plan(ablation, out, [0], ablation.rows, random_init=True, data_dir='/d')
  argvs = {t.name: [p.argv for p in t.phases] for t in tasks}
  for argv in argvs['a'] + argvs['random_init']:
    assert argv[:2] == ('env', 'JAXVSSL_CONV_IMPL=xla') and argv[3:5] == ('-m', 'jaxvssl'), argv
  assert all(argv[1:3] == ('-m', 'jaxvssl') for argv in argvs['b'])
  with pytest.raises(errors.ConfigError, match='data.data_dir is not set'):
    run(path, FakeJaxvssl(), seeds=[0])  # synthetic_motion, built first, needs a directory
  run(path, FakeJaxvssl(), seeds=[0], data_dir=str(tmp_path / 'data'))
  rows = json.loads((tmp_path / 'out' / 'results.json').read_text())['rows']
  assert rows['a']['env'] == ['JAXVSSL_CONV_IMPL=xla'] and rows['b']['env'] == []


# --- bad input ---------------------------------------------------------------------------------

GOOD_ROW = f"Row('a', {MOCO!r})"


@pytest.mark.parametrize(
  'body, expected',
  [
    ('x = 1\n', 'no get_ablation()'),
    ('def get_ablation():\n  return {"name": "x"}\n', 'returned dict'),
    ('def get_ablation():\n  raise KeyError("k")\n', 'get_ablation() failed'),
    ('import nonexistent_module_xyz\n', 'running it failed'),
    (f'def get_ablation():\n  return Ablation("x", rows=({GOOD_ROW}, {GOOD_ROW}))\n', 'unique'),
    ('def get_ablation():\n  return Ablation("x", rows=())\n', 'non-empty'),
    ('def get_ablation():\n  return Ablation("x y", rows=(GOOD,))\n', "name 'x y'"),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("random_init", "c.py"),))\n',
      'reserved',
    ),
    ('def get_ablation():\n  return Ablation("x", rows=(Row("a", "configs/moco"),))\n', 'config='),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("a", "c.py", ("nokey",)),))\n',
      "override 'nokey'",
    ),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("a", "c.py", ("seed=3",)),))\n',
      '--seeds',
    ),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("a", "c.py", ("k={stage:nope}",)),))\n',
      "stage 'nope'",
    ),
    ('def get_ablation():\n  return Ablation("x", rows=(GOOD,), seeds=(0, 0))\n', 'repeats'),
    ('def get_ablation():\n  return Ablation("x", rows=(GOOD,), seeds=(-1,))\n', 'non-negative'),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("a", "configs/nope.py:x"),))\n',
      "row 'a'",
    ),
    (
      f'def get_ablation():\n  return Ablation("x", rows=(Row("a", {MOCO!r}, ("moco.nokey=1",)),))\n',
      'config.moco.nokey',
    ),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("a", "c.py", env=("A B",)),))\n',
      "env item 'A B'",
    ),
    (
      'def get_ablation():\n  return Ablation("x", rows=(Row("a", "c.py", env="A=1"),))\n',
      'env=',
    ),
  ],
)
def test_bad_ablation_files_are_config_errors_naming_the_file(tmp_path, body, expected):
  header = f'from jaxvssl.ablate import Ablation, Row, Stage\nGOOD = {GOOD_ROW}\n'
  path = write_ablation(tmp_path, header + body)
  with pytest.raises(errors.ConfigError) as info:
    run(path, FakeJaxvssl())
  message = str(info.value)
  assert path in message and expected in message, message
  assert '\n' not in message


def test_missing_file_unknown_row_and_bad_seeds_exit_2_through_the_cli(tmp_path, capsys):
  missing = str(tmp_path / 'missing.py')
  assert cli.main(['ablate', missing]) == 2
  assert f"ablation file '{missing}' does not exist" in capsys.readouterr().err
  path = two_rows(tmp_path)
  assert cli.main(['ablate', path, '--rows', 'a,zz', '--dry_run']) == 2
  err = capsys.readouterr().err
  assert "unknown row 'zz'" in err and path in err and "'random_init'" in err
  for seeds in ('0,x', '', '1,1', '-1', '0,,1'):
    assert cli.main(['ablate', path, '--seeds', seeds, '--dry_run']) == 2, seeds
    assert f'--seeds {seeds!r}' in capsys.readouterr().err
  assert cli.main(['ablate', path, '--jobs', '0', '--dry_run']) == 2
  assert cli.main(['ablate', path, '--dry_run', '--config.moco.nokey=1']) == 2
  assert 'config.moco.nokey' in capsys.readouterr().err


def test_the_ablate_subcommand_is_listed(capsys):
  assert cli.main(['--help']) == 0
  assert 'jaxvssl ablate' in capsys.readouterr().out


# --- the shipped ablation files ----------------------------------------------------------------


@pytest.mark.parametrize(
  'name', sorted(p.stem for p in (REPO_ROOT / 'configs' / 'ablations').glob('[!_]*.py'))
)
def test_shipped_ablation_files_load_and_every_config_validates(name, tmp_path):
  path = str(REPO_ROOT / 'configs' / 'ablations' / f'{name}.py')
  ablation = ablate.load_ablation(path)
  assert ablation.name == name and ablation.seeds == (0, 1, 2)
  tasks = planning.plan(
    ablation, str(tmp_path), [0], ablation.rows, random_init=ablation.random_init
  )
  by_task = planning.check_configs(ablation, path, tasks)
  assert len(by_task) == len(ablation.rows) + len(ablation.stages)
  row_configs = [by_task[t.key] for t in tasks if t.kind == 'row']
  stage_configs = [by_task[t.key] for t in tasks if t.kind == 'stage']
  for config in by_task.values():
    assert config.data.name == 'synthetic_motion/default'
    assert os.path.isabs(config.data.data_dir)
  if name.startswith('cacl'):
    assert ablation.random_init
    assert all(config.method == 'cacl' for config in row_configs)
    uses_t = [any(p != 'gq_gk' for p in c.cacl.positive_pairs) for c in row_configs]
    # The frame encoder of T is a frames stage of the same seed; rows without T need none.
    # (cacl_t_collapse also trains one on difference images, for its row `t_difference`.)
    stages = [s.name for s in ablation.stages]
    assert stages[:1] == (['frames'] if any(uses_t) else [])
    assert all(config.method == 'frames' for config in stage_configs)
    for config, t in zip(row_configs, uses_t):
      if t:
        stage = 'frames_diff' if config.cacl.frame_input == 'difference' else 'frames'
        assert config.cacl.frame_encoder_workdir == str(tmp_path / 'stages' / stage / 'seed0')


def test_cacl_table_files_have_the_papers_rows():
  table1 = ablate.load_ablation(str(REPO_ROOT / 'configs' / 'ablations' / 'cacl_table1.py'))
  assert [(r.name, r.display, r.config) for r in table1.rows] == [
    (row, name, f'configs/cacl.py:{row}.tiny')
    for row, name in (
      ('sdp', 'SDP'),
      ('sdp_star', 'SDP*'),
      ('vmoco', 'V-MoCo'),
      ('sdp_vmoco', 'SDP+V-MoCo'),
      ('vmoco_t', 'V-MoCo+T'),
      ('sdp_vmoco_t', 'SDP+V-MoCo+T'),
    )
  ]
  table2 = ablate.load_ablation(str(REPO_ROOT / 'configs' / 'ablations' / 'cacl_table2.py'))
  assert [r.name for r in table2.rows] == [
    'pairs_gg',
    'pairs_gg_gtq',
    'pairs_gg_gtq_gtk',
    'pairs_all',
  ]


def test_git_commit_names_this_checkout():
  commit = provenance.git_commit()
  assert re.fullmatch(r'[0-9a-f]{40}(-dirty)?', commit), commit


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.slow
def test_ablate_end_to_end_two_rows_two_seeds(tmp_path, capsys):
  """2 MoCo rows x 2 seeds + random init on synthetic_motion/tiny, 3 steps each, 2 jobs."""
  path = write_ablation(
    tmp_path,
    f"""\
    from jaxvssl.ablate import Ablation, Row

    def get_ablation():
      return Ablation(
        name='e2e',
        rows=(Row('t02', {MOCO!r}, ('moco.temperature=0.2',), 'tau 0.2'),
              Row('t05', {MOCO!r}, ('moco.temperature=0.5',), 'tau 0.5')),
        overrides=('data.name=synthetic_motion/tiny', 'data.data_dir={tmp_path}/tfds'),
        random_init=True,
        seeds=(0, 1),
      )
    """,
  )
  out = tmp_path / 'out'
  argv = ['ablate', path, '--out', str(out), '--jobs', '2', *TINY_RUN]
  assert cli.main(argv) == 0, capsys.readouterr()
  results = json.loads((out / 'results.json').read_text())
  assert results['status'] == 'complete' and results['failures'] == []
  for row in ('random_init', 't02', 't05'):
    stats = results['rows'][row]['metrics']['retrieval/R@1']
    assert stats['n'] == 2 and set(stats['values']) == {'0', '1'}
    assert stats['mean'] == pytest.approx(np.mean(list(stats['values'].values())))
    assert stats['std'] == pytest.approx(np.std(list(stats['values'].values()), ddof=1))
  assert results['rows']['t02']['metrics']['train/loss']['n'] == 2
  assert results['rows']['t02']['metrics']['train/contrastive_accuracy']['n'] == 2
  # The two seeds trained differently: the seed reached the run's config.
  configs = [json.loads((out / 't02' / f'seed{s}' / 'config.json').read_text()) for s in (0, 1)]
  assert [c['seed'] for c in configs] == [0, 1]
  assert configs[0]['moco']['temperature'] == 0.2 and configs[0]['num_steps'] == 3
  for log in ('train.log', 'eval.log'):
    assert (out / 't05' / 'seed1' / log).stat().st_size > 0
  md = (out / 'results.md').read_text()
  assert md.startswith('# Ablation `e2e`') and f'- command: `jaxvssl ablate {path}' in md
  for name in ('random init', 'tau 0.2', 'tau 0.5'):
    assert re.search(rf'^\| {re.escape(name)} \| 2/2 \| \d+\.\d ± \d+\.\d \|', md, re.M), md
  assert '## Per seed (percent)' in md and '## Pretext diagnostics' in md
  # Rerun: every pair has its summary.json, so nothing runs and the table is the same.
  capsys.readouterr()
  assert cli.main(argv) == 0
  assert '6 tasks (6 already done)' in capsys.readouterr().out
  assert json.loads((out / 'results.json').read_text())['rows'] == results['rows']
  assert len(glob.glob(str(out / '*' / 'seed*' / 'eval' / 'summary.json'))) == 6


def test_recorded_command_has_paths_under_the_checkout_relative(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  inside, outside = str(tmp_path / 'data' / 'tfds'), '/elsewhere/data'
  assert ablate_command._relative_to_cwd(inside) == os.path.join('data', 'tfds')
  assert (
    ablate_command._relative_to_cwd(f'--out={inside}') == f'--out={os.path.join("data", "tfds")}'
  )
  assert ablate_command._relative_to_cwd(outside) == outside
  assert ablate_command._relative_to_cwd('--seeds=0,1') == '--seeds=0,1'


def test_random_init_without_its_first_rows_run_fails_up_front_naming_the_row(tmp_path, capsys):
  """`--rows random_init` alone on a seed whose first row never ran: exit 2 before anything runs
  (it used to fail that pair after the others, with a data error in eval.log)."""
  path = two_rows(tmp_path)
  fake = FakeJaxvssl()
  assert (
    cli.main(
      ['ablate', path, '--rows', 'b,random_init', '--seeds', '1', '--out', str(tmp_path / 'out')]
    )
    == 2
  )
  err = capsys.readouterr().err
  assert "random init of seed 1 evaluates the first row 'a'" in err and path in err
  assert "add 'a' to --rows" in err and '\n' not in err.strip()
  assert not (tmp_path / 'out' / 'b').exists()
  # Once the first row's run exists (here: run alone), random init alone is fine.
  run(path, fake, seeds=[1], rows=['a'])
  results = run(path, fake, seeds=[1], rows=['random_init'])
  assert results['exit_code'] == 0
