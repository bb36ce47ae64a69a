"""results.json's numbers: per row and metric the mean and sample std over seeds, the pretext
diagnostics from the training logs, and each row against the row above."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxvssl import errors
from jaxvssl.ablate import definition
from jaxvssl.ablate.tasks import Outcome, Task

# Pretext diagnostics: the mean over this many of the last training log records (metrics.jsonl
# lines that hold a 'loss'); keys starting with an excluded prefix are timings, not results.
LAST_N_LOGGED_STEPS = 5
DIAGNOSTIC_PREFIX = 'train/'
EXCLUDED_DIAGNOSTICS = ('perf/',)
# Held-out pretext diagnostics, from eval/summary.json (`jaxvssl evaluate`, evaluation/pretext.py):
# raw numbers like the training ones, shown next to them.
HELD_OUT_PREFIX = 'pretext/'
RAW_PREFIXES = (DIAGNOSTIC_PREFIX, HELD_OUT_PREFIX)
# "Against the row above": a row's mean minus the mean of the row before it (random init first, then
# the file's order, as in a component-by-component table), on these metrics. A change counts only
# when it is larger than the seeds' spread, the larger of the two rows' sample standard deviations;
# with fewer than MIN_SEEDS_FOR_VERDICT seeds on either side there is no verdict.
DIFFERENCE_METRICS = (
  'retrieval/R@1',
  'linear_probe/clip_top1',
  'linear_probe/video_top1',
  'finetune/clip_top1',
  'finetune/video_top1',
)
MIN_SEEDS_FOR_VERDICT = 2


def mean_std(values: Mapping[int, float]) -> dict[str, Any]:
  """`{mean, std, n, values: {seed: value}}`; std is the sample std (ddof=1), None for n = 1."""
  seeds = sorted(values)
  array = np.asarray([values[s] for s in seeds], dtype=np.float64)
  return {
    'mean': float(array.mean()),
    'std': float(array.std(ddof=1)) if len(array) > 1 else None,
    'n': len(array),
    'values': {str(s): float(values[s]) for s in seeds},
  }


def train_diagnostics(metrics_file: str, last_n: int = LAST_N_LOGGED_STEPS) -> dict[str, float]:
  """`train/<key>`: the mean of every scalar over the last `last_n` training log records.

  Training records are the metrics.jsonl lines with a 'loss' (monitor lines have none); 'step'
  and the `EXCLUDED_DIAGNOSTICS` prefixes are left out. {} when the file is missing.
  """
  try:
    with open(metrics_file) as f:
      records = [json.loads(line) for line in f if line.strip()]
  except OSError:
    return {}
  records = [r for r in records if 'loss' in r][-last_n:]
  keys = sorted({k for r in records for k in r})
  out = {}
  for key in keys:
    if key == 'step' or key.startswith(EXCLUDED_DIAGNOSTICS):
      continue
    values = [r[key] for r in records if _is_number(r.get(key))]
    if values:
      out[DIAGNOSTIC_PREFIX + key] = float(np.mean(values))
  return out


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def pair_metrics(task: Task) -> dict[str, float]:
  """The numbers of the task's eval/summary.json plus its training diagnostics."""
  with open(task.summary) as f:
    summary = json.load(f)
  metrics = {k: float(v) for k, v in summary.get('metrics', {}).items() if _is_number(v)}
  if task.kind == 'row':
    metrics.update(train_diagnostics(os.path.join(task.dir, 'metrics.jsonl')))
  return metrics


def collect(
  ablation: definition.Ablation,
  tasks: Sequence[Task],
  outcomes: Mapping[tuple[str, str, int], Outcome],
  header: Mapping[str, Any],
) -> dict[str, Any]:
  """results.json's payload: per row and metric mean, std, n and per-seed values; failures."""
  table_rows: dict[str, dict[str, Any]] = {}
  displays = {r.name: r.display for r in ablation.rows}
  displays[definition.RANDOM_INIT] = definition.RANDOM_INIT_DISPLAY
  envs = {r.name: list(r.env) for r in ablation.rows}
  envs[definition.RANDOM_INIT] = list(ablation.rows[0].env)
  failures, pairs, stages = [], [], []
  for task in tasks:
    outcome = outcomes.get(task.key, Outcome('not_run'))
    record = {
      'name': task.name,
      'seed': task.seed,
      'status': outcome.status,
      'dir': task.dir,
      'seconds': round(outcome.seconds, 1),
    }
    if outcome.status == 'failed':
      failures.append(
        {
          'kind': task.kind,
          'name': task.name,
          'seed': task.seed,
          'status': outcome.status,
          'phase': outcome.phase,
          'exit_code': outcome.exit_code,
          'reason': outcome.why(),
          'log': outcome.log,
          'tail': list(outcome.tail),
        }
      )
    if task.kind == 'stage':
      stages.append(record)
      continue
    pairs.append(record)
    row = table_rows.setdefault(
      task.name,
      {
        'display': displays[task.name],
        'config': task.config,
        'overrides': list(task.recorded_overrides),
        'env': envs[task.name],
        'seeds': [],
        'ok': [],
        'failed': {},
        'not_run': [],
        'per_seed': {},
      },
    )
    row['seeds'].append(task.seed)
    if outcome.ok and task.summary and os.path.exists(task.summary):
      try:
        row['per_seed'][task.seed] = pair_metrics(task)
        row['ok'].append(task.seed)
      except (OSError, ValueError) as e:
        why = f'unreadable {task.summary}: {errors.summary(e)}'
        row['failed'][str(task.seed)] = why
        failures.append(
          {'kind': task.kind, 'name': task.name, 'seed': task.seed, 'status': 'failed'}
          | {'phase': 'collect', 'exit_code': None, 'reason': why, 'log': '', 'tail': []}
        )
    elif outcome.status == 'failed':
      row['failed'][str(task.seed)] = outcome.why()
    else:
      row['not_run'].append(task.seed)
  ordered = ([definition.RANDOM_INIT] if definition.RANDOM_INIT in table_rows else []) + [
    r.name for r in ablation.rows if r.name in table_rows
  ]
  rows_out = {}
  for name in ordered:
    row = table_rows[name]
    per_seed = row.pop('per_seed')
    keys = sorted({k for m in per_seed.values() for k in m})
    row['n'] = len(row['ok'])
    row['n_total'] = len(row['seeds'])
    row['metrics'] = {
      key: mean_std({s: m[key] for s, m in per_seed.items() if key in m}) for key in keys
    }
    rows_out[name] = row
  status = 'complete'
  if any(task.key not in outcomes for task in tasks):
    status = 'running'  # rewritten after every finished pair: the rest is still to come
  if any(o.status in ('interrupted', 'not_run') for o in outcomes.values()):
    status = 'interrupted'
  if failures:
    status = 'failed'
  return {
    **header,
    'ablation': ablation.name,
    'description': ablation.description,
    'status': status,
    'conventions': {
      'mean': 'over the seeds whose pair finished; failed seeds are never averaged',
      'std': 'sample standard deviation over seeds (ddof=1); null with one seed',
      'units': 'as in eval/summary.json: fractions (results.md shows percent)',
      'train_diagnostics': (
        f'{DIAGNOSTIC_PREFIX}<key> = mean of <key> over the last {LAST_N_LOGGED_STEPS} '
        f'training log records of metrics.jsonl ({", ".join(EXCLUDED_DIAGNOSTICS)}* excluded)'
      ),
    },
    'rows': rows_out,
    'differences': row_differences(rows_out),
    'failures': failures,
    'pairs': pairs,
    'stages': stages,
  }


def difference(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
  """`after - before` of two `mean_std` results: `{delta, spread, verdict}`.

  spread = max of the two sample stds; verdict 'higher' / 'lower' when |delta| > spread, 'no
  difference' when not, 'too few seeds' (spread None) when either side has < 2 seeds.
  """
  delta = after['mean'] - before['mean']
  if min(before['n'], after['n']) < MIN_SEEDS_FOR_VERDICT:
    return {'delta': delta, 'spread': None, 'verdict': 'too few seeds'}
  spread = max(before['std'], after['std'])
  verdict = 'no difference' if abs(delta) <= spread else ('higher' if delta > 0 else 'lower')
  return {'delta': delta, 'spread': spread, 'verdict': verdict}


def row_differences(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
  """Every row but the first against the row above it, on `DIFFERENCE_METRICS` both rows have."""
  names = list(rows)
  out = {}
  for before, after in zip(names, names[1:]):
    a, b = rows[before]['metrics'], rows[after]['metrics']
    out[after] = {
      'against': before,
      'metrics': {k: difference(a[k], b[k]) for k in DIFFERENCE_METRICS if k in a and k in b},
    }
  return out
