"""results.md, rendered from results.json's payload, and the writing of both files."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from jaxvssl.ablate import aggregate
from jaxvssl.evaluation import reports

# The main table's columns: the evaluation metrics of `jaxvssl compare` (fractions, shown in
# percent); a column no row has is left out.
MAIN_COLUMNS: tuple[tuple[str, str], ...] = reports.COLUMNS
DIAGNOSTIC_FORMAT = '.4g'  # diagnostics are raw numbers (losses, similarities), not percent


def format_difference(d: Mapping[str, Any]) -> str:
  """'+11.2 > 1.4: higher', '-0.8 <= 1.4: no difference', '+3.0 (too few seeds)' (percent)."""
  delta = f'{100 * d["delta"]:+.1f}'
  if d['spread'] is None:
    return f'{delta} ({d["verdict"]})'
  sign = '<=' if d['verdict'] == 'no difference' else '>'
  return f'{delta} {sign} {100 * d["spread"]:.1f}: {d["verdict"]}'


def _n_cell(row: Mapping[str, Any]) -> str:
  cell = f'{row["n"]}/{row["n_total"]}'
  if row['failed']:
    seeds = ', '.join(f'seed {s} ({why})' for s, why in row['failed'].items())
    cell += f', {len(row["failed"])} failed: {seeds}'
  if row['not_run']:
    seeds = ', '.join(f'seed {s}' for s in row['not_run'])
    cell += f', {len(row["not_run"])} not run: {seeds}'
  return cell


def format_cell(key: str, stats: Mapping[str, Any] | None, row_n: int) -> str | None:
  """`mean ± std` of one metric: percent for evaluation metrics, raw numbers for diagnostics;
  `(n=k)` when fewer seeds than the row's have it. None when the row has no value."""
  if stats is None:
    return None
  if key.startswith(aggregate.RAW_PREFIXES):
    cell = f'{stats["mean"]:{DIAGNOSTIC_FORMAT}}'
    if stats['std'] is not None:
      cell += f' ± {stats["std"]:{DIAGNOSTIC_FORMAT}}'
  else:
    cell = reports.format_mean_std(stats['mean'], stats['std'])
  if stats['n'] < row_n:
    cell += f' (n={stats["n"]})'
  return cell


def render_markdown(results: Mapping[str, Any]) -> str:
  """results.md: provenance, the mean ± std table, failures, per-seed values, diagnostics."""
  machine = results['machine']
  rows = results['rows']
  usable = machine.get('usable_cores')
  usable = f' ({usable} usable)' if usable and usable != machine.get('cores') else ''
  lines = [f'# Ablation `{results["ablation"]}`', '']
  if results.get('description'):
    lines += [results['description'], '']
  lines += [
    f'- command: `{results["command"]}`',
    f'- date: {results["date"]}',
    f'- commit: `{results["git_commit"]}`',
    f'- machine: {machine.get("cpu")}, {machine.get("cores")} cores{usable}, Python '
    f'{machine.get("python")}, jax {machine.get("jax")}, backend {machine.get("backend")} '
    f'({machine.get("devices")} x {machine.get("device_kind")})',
    f'- seeds: {", ".join(map(str, results["seeds"]))}; status: {results["status"]}',
  ]
  if results.get('recorded_in'):
    lines.append(
      f'- pairs: every one recorded in `{results["recorded_in"]}`, by whichever run finished it '
      '(the command above is the last run that wrote this table)'
    )
  lines += [
    '',
    'Evaluation metrics in percent. Each cell is the mean ± the sample standard deviation '
    '(ddof=1) over the seeds that finished (no ± with one seed); `n` = seeds finished / seeds '
    'run. Failed seeds are listed, never averaged.',
    '',
  ]
  present = {k for row in rows.values() for k in row['metrics']}
  columns = [(k, h) for k, h in MAIN_COLUMNS if k in present]
  table = [
    (
      row['display'],
      {
        'n': _n_cell(row),
        **{k: format_cell(k, row['metrics'].get(k), row['n']) for k, _ in columns},
      },
    )
    for row in rows.values()
  ]
  lines += [reports.comparison_table(table, [('n', 'n'), *columns])]
  differences = results['differences']
  compared = [(k, h) for k, h in columns if k in aggregate.DIFFERENCE_METRICS]
  if any(d['metrics'] for d in differences.values()) and compared:
    lines += [
      '## Against the row above (percent points)',
      '',
      "Each cell: mean minus the mean of the row above, then the seeds' spread (the larger of the "
      "two rows' std); a difference no larger than the spread is no difference. Fewer than "
      f'{aggregate.MIN_SEEDS_FOR_VERDICT} seeds on either side: no verdict.',
      '',
    ]
    table = [
      (
        f'{rows[name]["display"]} vs {rows[d["against"]]["display"]}',
        {k: format_difference(d['metrics'][k]) for k, _ in compared if k in d['metrics']},
      )
      for name, d in differences.items()
    ]
    lines += [reports.comparison_table(table, compared)]
  if results['failures']:
    lines += ['## Failures', '']
    for failure in results['failures']:
      kind = 'stage ' if failure['kind'] == 'stage' else ''
      log = f' (log `{failure["log"]}`)' if failure['log'] else ''
      lines.append(f'- {kind}{failure["name"]} seed {failure["seed"]}: {failure["reason"]}{log}')
      if failure['tail']:
        lines += ['', '  ```', *(f'  {line}' for line in failure['tail']), '  ```']
    lines.append('')
  lines += ['## Per seed (percent)', '']
  per_seed = []
  for row in rows.values():
    for seed in row['seeds']:
      cells = {'seed': str(seed)}
      if str(seed) in row['failed']:
        cells['status'] = f'failed: {row["failed"][str(seed)]}'
      elif seed in row['not_run']:
        cells['status'] = 'not run'
      else:
        cells['status'] = 'ok'
        cells.update(
          {
            k: row['metrics'][k]['values'][str(seed)]
            for k, _ in columns
            if str(seed) in row['metrics'].get(k, {}).get('values', {})
          }
        )
      per_seed.append((row['display'], cells))
  lines += [reports.comparison_table(per_seed, [('seed', 'seed'), ('status', 'status'), *columns])]
  # The training diagnostics first, then the held-out ones.
  diagnostics = sorted(
    (k for k in present if k.startswith(aggregate.RAW_PREFIXES)),
    key=lambda k: (not k.startswith(aggregate.DIAGNOSTIC_PREFIX), k),
  )
  if diagnostics:
    lines += [
      f'## Pretext diagnostics (`train/`: mean of the last {aggregate.LAST_N_LOGGED_STEPS} logged training '
      f'steps; `{aggregate.HELD_OUT_PREFIX}`: on held-out test clips, `jaxvssl evaluate`; mean ± std over '
      'seeds)',
      '',
    ]
    table = [
      (row['display'], {k: format_cell(k, row['metrics'].get(k), row['n']) for k in diagnostics})
      for row in rows.values()
      if any(k in row['metrics'] for k in diagnostics)  # random init: held-out ones only
    ]
    lines += [reports.comparison_table(table, [(k, _diagnostic_header(k)) for k in diagnostics])]
  return '\n'.join(lines).rstrip('\n') + '\n'


def _diagnostic_header(key: str) -> str:
  """A training diagnostic's column is its key (`train/loss` -> `loss`); a held-out one keeps
  its `pretext/` prefix, so both can stand side by side."""
  return (
    key[len(aggregate.DIAGNOSTIC_PREFIX) :] if key.startswith(aggregate.DIAGNOSTIC_PREFIX) else key
  )


def write_results(out: str, results: Mapping[str, Any]) -> tuple[str, str]:
  """Writes OUT/results.json and OUT/results.md (each through a temporary file and a rename)."""
  os.makedirs(out, exist_ok=True)
  paths = (os.path.join(out, 'results.json'), os.path.join(out, 'results.md'))
  texts = (json.dumps(results, indent=2, default=repr) + '\n', render_markdown(results))
  for path, text in zip(paths, texts):
    tmp = f'{path}.{os.getpid()}.tmp'  # two runners sharing a record never share it
    with open(tmp, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  return paths
