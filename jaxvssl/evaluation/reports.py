"""Result files of every evaluation and the side-by-side comparison table.

Each evaluation writes into its own output directory:
  * `results.json`: `{"run": str, "protocol": str, "metrics": {name: float}, "details": {...}}`;
    metric names are namespaced (`retrieval/R@1`, `linear_probe/clip_top1`, ...), values are
    fractions in [0, 1] (accuracy drops too: original minus shuffled, so positive = a drop).
  * `results.md`: the same metrics as a two-column markdown table, values in percent.

`average_splits(paths, out_dir)` averages one method's runs over the data set splits (UCF101 /
HMDB51 splits 1-3) into a results.json of its own.

`compare(paths, out_path)` reads several runs (a run = a directory searched recursively for
`results.json`, or a `results.json` file) and renders one markdown table shaped like the papers'
ablation tables: one row per run, columns `COLUMNS`, missing cells '-'.

Every path may be on an object store (`gs://bucket/...`, through `etils.epath`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from etils import epath

# (metric name in results.json, column header in the comparison table)
COLUMNS: tuple[tuple[str, str], ...] = (
  ('retrieval/R@1', 'R@1'),
  ('retrieval/R@5', 'R@5'),
  ('retrieval/R@10', 'R@10'),
  ('retrieval/R@20', 'R@20'),
  ('retrieval/R@50', 'R@50'),
  ('linear_probe/clip_top1', 'Linear clip'),
  ('linear_probe/video_top1', 'Linear video'),
  ('finetune/clip_top1', 'Finetune clip'),
  ('finetune/video_top1', 'Finetune video'),
  ('shuffle/clip_drop', 'Shuffle drop clip'),
  ('shuffle/video_drop', 'Shuffle drop video'),
)
MISSING = '-'
PERCENT_DECIMALS = 1


def format_percent(value: float) -> str:
  """A fraction as percent with PERCENT_DECIMALS decimals: 0.3456 -> '34.6'."""
  return f'{100.0 * float(value):.{PERCENT_DECIMALS}f}'


def format_mean_std(mean: float, std: float | None) -> str:
  """A mean and standard deviation of fractions in percent: '34.6 ± 1.2'; '34.6' if std is None."""
  if std is None:
    return format_percent(mean)
  return f'{format_percent(mean)} ± {format_percent(std)}'


def _fmt(value: Any) -> str:
  """A table cell: a number as percent, None as MISSING, a string (pre-formatted) as is."""
  if value is None:
    return MISSING
  if isinstance(value, (int, float)):
    return format_percent(value)
  return str(value)


def write_results(
  out_dir: str | os.PathLike,
  metrics: Mapping[str, float],
  *,
  protocol: str,
  run_name: str | None = None,
  details: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
  """Writes `results.json` and `results.md` into `out_dir`; returns their paths."""
  out = epath.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  run = run_name or out.name
  payload = {
    'run': run,
    'protocol': protocol,
    'metrics': {k: float(v) for k, v in metrics.items()},
    'details': dict(details or {}),
  }
  json_path = out / 'results.json'
  json_path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=repr))
  lines = [f'## {protocol}: {run}', '', '| metric | value (%) |', '|---|---|']
  lines += [f'| {k} | {_fmt(v)} |' for k, v in payload['metrics'].items()]
  md_path = out / 'results.md'
  md_path.write_text('\n'.join(lines) + '\n')
  return os.fspath(json_path), os.fspath(md_path)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
  """Parses one `results.json`, checking its schema."""
  payload = json.loads(epath.Path(path).read_text())
  if not isinstance(payload, dict) or not isinstance(payload.get('metrics'), dict):
    raise ValueError(f"{path}: not a results.json (needs a 'metrics' object)")
  return payload


def collect_run(path: str | os.PathLike) -> tuple[str, dict[str, float]]:
  """Merges every results.json of one run.

  Args:
    path: a run directory (searched recursively) or one results.json file.
  Returns:
    `(run name, merged metrics)`; the run name is the directory's basename (for a file, the
    `run` field of the file).
  """
  path = epath.Path(path)
  if path.is_file():
    payload = read_results(path)
    return str(payload.get('run') or path.parent.name), dict(payload['metrics'])
  if not path.is_dir():
    raise FileNotFoundError(f'compare: {path} is neither a results.json nor a directory')
  # walk, not glob('**'): epath's glob does not recurse on every backend.
  files = sorted(root / 'results.json' for root, _, names in path.walk() if 'results.json' in names)
  if not files:
    raise FileNotFoundError(f'compare: no results.json under {path}')
  merged: dict[str, float] = {}
  origin: dict[str, str] = {}
  for f in files:
    for k, v in read_results(f)['metrics'].items():
      if k in merged and merged[k] != v:
        raise ValueError(f'compare: metric {k} differs between {origin[k]} and {f}')
      merged[k], origin[k] = v, f
  return path.name, merged


def comparison_table(
  runs: Sequence[tuple[str, Mapping[str, float]]], columns: Sequence[tuple[str, str]] = COLUMNS
) -> str:
  """Markdown table, rows = runs, columns = metrics (percent, 1 decimal), '-' when missing.

  A string value is printed as it is (e.g. `jaxvssl.ablate`'s 'mean ± std' cells).
  """
  header = '| run | ' + ' | '.join(h for _, h in columns) + ' |'
  sep = '|---|' + '---|' * len(columns)
  rows = [
    f'| {name} | ' + ' | '.join(_fmt(m.get(key)) for key, _ in columns) + ' |' for name, m in runs
  ]
  return '\n'.join([header, sep] + rows) + '\n'


def compare(
  paths: Sequence[str | os.PathLike],
  out_path: str | os.PathLike | None = None,
  columns: Sequence[tuple[str, str]] = COLUMNS,
) -> str:
  """Renders several runs side by side; writes the markdown to `out_path` if given.

  Extra metrics not in `columns` are ignored; a run without any metric still gets a row of '-'.
  """
  runs = [collect_run(p) for p in paths]
  table = comparison_table(runs, columns)
  if out_path is not None:
    out = epath.Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
  return table


def average_splits(
  paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, run_name: str | None = None
) -> dict[str, float]:
  """Mean of each metric over several runs (one per split), written as results.json / .md.

  Only metrics present in every run are averaged (a partial average would not be comparable);
  the others are listed in details['skipped']. details also holds each split's value and the
  population standard deviation.
  """
  runs = [collect_run(p) for p in paths]
  if len(runs) < 2:
    raise ValueError(f'average_splits: need >= 2 runs, got {len(runs)}')
  common = set(runs[0][1]).intersection(*(set(m) for _, m in runs[1:]))
  every = set().union(*(set(m) for _, m in runs))
  metrics, per_split, std = {}, {}, {}
  for key in sorted(common):
    values = [float(m[key]) for _, m in runs]
    mean = sum(values) / len(values)
    metrics[key] = mean
    per_split[key] = values
    std[key] = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
  write_results(
    out_dir,
    metrics,
    protocol='average_over_splits',
    run_name=run_name,
    details={
      'runs': [name for name, _ in runs],
      'per_split': per_split,
      'std': std,
      'skipped': sorted(every - common),
    },
  )
  return metrics
