"""`jaxvssl ablate FILE ...`: the command line, and `run_ablation`, which plans, checks, runs and
writes the results."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from jaxvssl import errors
from jaxvssl.ablate import aggregate, definition, planning, provenance, records, report, running
from jaxvssl.ablate.tasks import Outcome, RunCommand

# Exit status of `jaxvssl ablate` when a pair failed or did not finish (the others finished).
EXIT_FAILED = 5


def select_rows(
  ablation: definition.Ablation, names: Sequence[str] | None, path: str
) -> tuple[list, bool]:
  """(rows, random_init) chosen by `--rows` (all of them, and random init, when None)."""
  if names is None:
    return list(ablation.rows), ablation.random_init
  known = ablation.row_names
  unknown = [n for n in names if n not in known]
  if unknown or not names:
    raise errors.ConfigError(
      f'--rows: unknown row {unknown[0] if unknown else "(none)"!r} of {path}; rows: {known}'
    )
  return [r for r in ablation.rows if r.name in names], definition.RANDOM_INIT in names


def record_results(
  ablation: definition.Ablation,
  record: str,
  seeds: Sequence[int],
  header: dict[str, Any],
  *,
  extra_overrides: Sequence[str] = (),
  data_dir: str | None = None,
  python: str = sys.executable,
) -> dict[str, Any]:
  """The record's results.json payload: every row of the file over the file's seeds, `seeds`
  (this run's) and any other seed recorded, from the pairs finished in `record`.

  Runners on several machines (each `--seeds` its own) share one record; each writes this same
  table of everything recorded, never only its own seeds. Status 'complete' when no pair is
  missing, else 'partial' (another runner may be at work on it).
  """
  recorded = records.recorded_seeds(record, ablation.row_names)
  seeds = sorted(set(ablation.seeds) | set(seeds) | recorded)
  tasks = planning.plan(
    ablation,
    record,
    seeds,
    ablation.rows,
    random_init=ablation.random_init,
    extra_overrides=extra_overrides,
    data_dir=data_dir,
    python=python,
  )
  tasks = [t for t in tasks if t.kind != 'stage']  # stages are never recorded
  outcomes = {
    t.key: Outcome('skipped', reason=f'recorded in {record}')
    for t in tasks
    if os.path.exists(t.summary)
  }
  results = aggregate.collect(
    ablation,
    tasks,
    outcomes,
    header | {'seeds': seeds, 'out': record, 'recorded_in': _relative_to_cwd(record)},
  )
  if results['status'] != 'failed':
    results['status'] = 'complete' if len(outcomes) == len(tasks) else 'partial'
  return results


def run_ablation(
  path: str,
  *,
  seeds: Sequence[int] | None = None,
  rows: Sequence[str] | None = None,
  out: str | None = None,
  jobs: int = 1,
  extra_overrides: Sequence[str] = (),
  data_dir: str | None = None,
  stages: str | None = None,
  dry_run: bool = False,
  collect_only: bool = False,
  record: str | None = None,
  command: str | None = None,
  run_command: RunCommand = running.run_subprocess,
  machine: Callable[[], dict[str, Any]] = provenance.machine_info,
  python: str = sys.executable,
) -> dict[str, Any]:
  """Runs (or, with dry_run, prints) an ablation; returns results.json's payload.

  The payload's 'exit_code' is 0 when every pair finished, `EXIT_FAILED` when one failed, and
  128 + the signal when SIGINT / SIGTERM stopped it. `run_command(argv, log) -> exit status`
  runs each subprocess (injectable for tests). `record`: see `--record` in the module docstring.
  `collect_only`: run nothing, write the results of the pairs already finished (status
  'partial' while some are missing).
  """
  ablation = definition.load_ablation(path)
  seeds = definition.check_seeds(list(seeds), '--seeds') if seeds is not None else ablation.seeds
  selected, random_init = select_rows(ablation, rows, path)
  if jobs < 1:
    raise errors.ConfigError(f'--jobs {jobs}: must be at least 1')
  extra = definition.check_overrides(path, 'command-line', list(extra_overrides))
  out = os.path.abspath(out or os.path.join('runs', 'ablations', ablation.name))
  data_dir = os.path.abspath(data_dir) if data_dir else None
  tasks = planning.plan(
    ablation,
    out,
    seeds,
    selected,
    random_init=random_init,
    extra_overrides=extra,
    data_dir=data_dir,
    stages=stages,
    python=python,
  )
  configs = planning.check_configs(ablation, path, tasks)
  record = records.check_record(record, out) if record else None
  restored = records.restore_records(tasks, out, record, copy=not dry_run) if record else []

  outcomes: dict[tuple[str, str, int], Outcome] = {}
  for task in tasks:
    if task in restored:
      outcomes[task.key] = Outcome('skipped', reason=f'restored from {record}')
    elif task.summary and os.path.exists(task.summary):
      outcomes[task.key] = Outcome('skipped', reason='eval/summary.json exists')
  for task in tasks:  # a stage is needed only while a row that names it is unfinished
    if task.kind == 'stage' and all(t.key in outcomes for t in tasks if task.key in t.deps):
      outcomes[task.key] = Outcome(
        'skipped', reason=f'no unfinished row of seed {task.seed} names {{stage:{task.name}}}'
      )
  needed = len(outcomes) < len(tasks) and not collect_only
  if needed and not dry_run:
    planning.check_random_init_sources(ablation, tasks, outcomes, path)
    planning.check_stage_workdirs(tasks, configs, outcomes)
  builds = planning.data_builds(list(configs.values()), out, python) if needed else []

  if dry_run:
    for phase in builds:
      print(shlex.join(phase.argv))
    for task in tasks:
      skip = f'# skipped ({outcomes[task.key].reason}): ' if task.key in outcomes else ''
      for phase in task.phases:
        print(f'{skip}{shlex.join(phase.argv)} > {phase.log}')
    return {'exit_code': 0, 'dry_run': True, 'tasks': len(tasks), 'skipped': len(outcomes)}

  header = {
    'command': command or f'jaxvssl ablate {shlex.quote(path)}',
    'file': path,
    'date': running.now(),
    'git_commit': provenance.git_commit(),
    'machine': machine(),
    'seeds': list(seeds),
    'out': out,
  }
  running.say(
    f'{ablation.name}: {len(tasks)} tasks ({len(outcomes)} already done) for seeds '
    f'{list(seeds)}, {jobs} at a time -> {out}'
  )

  def save_record() -> None:
    records.save_records(tasks, out, record)
    table = record_results(
      ablation, record, seeds, header, extra_overrides=extra, data_dir=data_dir, python=python
    )
    report.write_results(record, table)

  def update() -> None:
    report.write_results(out, aggregate.collect(ablation, tasks, outcomes, header))
    if record:
      save_record()

  stop = running.Stop()
  with running.handle_signals(stop):
    for phase in builds:
      running.say(f'building the data set: {shlex.join(phase.argv[3:])} (log: {phase.log})')
      code = run_command(phase.argv, phase.log)
      if stop.signum:
        raise errors.TrainingInterrupted(
          f'interrupted by {signal.Signals(stop.signum).name} while building the data set; '
          'rerun the same command to go on',
          stop.signum,
        )
      if code != 0:
        last = running.tail(phase.log, 1)
        raise errors.DataNotFoundError(
          f'building the data set failed (exit {code}): {shlex.join(phase.argv[3:])}; see '
          f'{phase.log}' + (f': {last[0]}' if last else '')
        )
    if collect_only:
      for task in tasks:
        outcomes.setdefault(task.key, Outcome('not_run', reason='not finished (--collect)'))
    else:
      running.execute(
        tasks, outcomes, jobs=jobs, run_command=run_command, on_update=update, stop=stop
      )
  results = aggregate.collect(ablation, tasks, outcomes, header)
  if collect_only and results['status'] != 'complete':
    results['status'] = 'partial'  # what has finished so far, nothing was stopped
  json_path, md_path = report.write_results(out, results)
  if record:
    save_record()
  if stop.signum:
    results['exit_code'] = 128 + stop.signum
  else:
    ok = ('complete', 'partial') if collect_only else ('complete',)
    results['exit_code'] = 0 if results['status'] in ok else EXIT_FAILED
  running.say(f'written {json_path} and {md_path}')
  return results


def _relative_to_cwd(arg: str) -> str:
  """An absolute path under the current directory (also as `--opt=PATH`), made relative to it,
  so the command recorded in results.md can be rerun from any checkout."""
  prefix, sep, value = arg.partition('=') if arg.startswith('--') else ('', '', arg)
  cwd = os.getcwd()
  if os.path.isabs(value) and os.path.commonpath([cwd, value]) == cwd and value != cwd:
    value = os.path.relpath(value, cwd)
  return f'{prefix}{sep}{value}'


def ablate_main(argv: Sequence[str]) -> int:
  """`jaxvssl ablate FILE [--seeds 0,1,2] [--rows a,b] [--out DIR] [--jobs N] [--data_dir DIR]
  [--stages DIR] [--record DIR] [--collect] [--dry_run] [--config.key=value ...]`; returns the
  exit status."""
  overrides = [a.removeprefix('--config.') for a in argv if a.startswith('--config.')]
  rest = [a for a in argv if not a.startswith('--config.')]
  parser = argparse.ArgumentParser(
    prog='jaxvssl ablate',
    description='Trains and evaluates every row of an ablation file once per seed; writes '
    'OUT/results.json and OUT/results.md (mean ± std over seeds). docs/ablations.md',
  )
  parser.add_argument('ablation', help='an ablation file, e.g. configs/ablations/cacl_table1.py')
  parser.add_argument('--seeds', default=None, help='comma-separated, e.g. 0,1,2 (default: file)')
  parser.add_argument(
    '--rows', default=None, help=f'comma-separated subset (and {definition.RANDOM_INIT})'
  )
  parser.add_argument('--out', default=None, help='default runs/ablations/<name>')
  parser.add_argument('--jobs', type=int, default=1, help='pairs run at the same time')
  parser.add_argument('--data_dir', default=None, help='data.data_dir of every stage and row')
  parser.add_argument(
    '--stages',
    default=None,
    help='where stages are trained (default OUT/stages); ablations with the same stage may share it',
  )
  parser.add_argument(
    '--record',
    default=None,
    help='keep the light files of finished pairs here too (restored into OUT when missing)',
  )
  parser.add_argument(
    '--collect',
    action='store_true',
    help='run nothing; write the results of the pairs finished so far',
  )
  parser.add_argument('--dry_run', action='store_true', help='print the commands, run nothing')
  args = parser.parse_args(rest)
  results = run_ablation(
    args.ablation,
    seeds=definition.parse_seeds(args.seeds) if args.seeds is not None else None,
    rows=[r.strip() for r in args.rows.split(',')] if args.rows is not None else None,
    out=args.out,
    jobs=args.jobs,
    extra_overrides=overrides,
    data_dir=args.data_dir,
    stages=args.stages,
    dry_run=args.dry_run,
    collect_only=args.collect,
    record=args.record,
    command=shlex.join(['jaxvssl', 'ablate', *(_relative_to_cwd(a) for a in argv)]),
  )
  if not args.dry_run:
    with open(os.path.join(results['out'], 'results.md')) as f:
      print('\n' + f.read())
  return results['exit_code']
