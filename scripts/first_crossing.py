"""The first logged training step at which a metric passes a threshold, per run and per row.

CACL's collapse of the transformer branch shows as cos(Tq, Tk) -> 1 (`similarity/tq_tk`); this
reads the metrics.jsonl of finished runs (no training) and reports, for each run directory, the
first logged step whose value exceeds the threshold, the value there and the final value. Run
directories named `<row>/seed<N>` (the ablation runner's layout) are also summarised per row as
mean ± std of the step over the seeds that crossed; a run that never crosses is counted apart.
Resolution is the run's logging interval (`log_every_steps`); `cacl.tq_tk_collapse_threshold`
records the exact step during training instead.

  python scripts/first_crossing.py runs/ablations/cacl_t_collapse --metric similarity/tq_tk \\
      --threshold 0.99
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np


def first_crossing(metrics_file: str, metric: str, threshold: float) -> dict:
  """{'step': first logged step with value > threshold or None, 'value', 'final'}."""
  with open(metrics_file) as f:
    records = [json.loads(line) for line in f if line.strip()]
  series = [(r['step'], r[metric]) for r in records if isinstance(r.get(metric), (int, float))]
  if not series:
    raise ValueError(f'{metrics_file}: no logged values of {metric!r}')
  hit = next(((s, v) for s, v in series if v > threshold), (None, None))
  return {'step': hit[0], 'value': hit[1], 'final': series[-1][1]}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('root', help='a run directory, or a folder of <row>/seed<N> run directories')
  parser.add_argument('--metric', default='similarity/tq_tk')
  parser.add_argument('--threshold', type=float, default=0.99)
  args = parser.parse_args(argv)
  files = sorted(glob.glob(os.path.join(args.root, '*', 'seed*', 'metrics.jsonl')))
  if not files and os.path.exists(os.path.join(args.root, 'metrics.jsonl')):
    files = [os.path.join(args.root, 'metrics.jsonl')]
  if not files:
    print(
      f'first_crossing.py: no metrics.jsonl under {args.root}; pass a run directory',
      file=sys.stderr,
    )
    return 2
  rows: dict[str, list[dict]] = {}
  print(f'| run | first step with {args.metric} > {args.threshold} | value there | final value |')
  print('|---|---|---|---|')
  for path in files:
    run = os.path.relpath(os.path.dirname(path), args.root)
    try:
      hit = first_crossing(path, args.metric, args.threshold)
    except ValueError:
      continue  # rows without the metric (e.g. no transformer branch)
    rows.setdefault(os.path.dirname(run) or run, []).append(hit)
    value = '-' if hit['value'] is None else f'{hit["value"]:.4f}'
    print(f'| {run} | {hit["step"] or "never"} | {value} | {hit["final"]:.4f} |')
  print('\n| row | seeds crossed | first step, mean ± std | final value, mean ± std |')
  print('|---|---|---|---|')
  for row, hits in rows.items():
    steps = [h['step'] for h in hits if h['step'] is not None]
    finals = [h['final'] for h in hits]
    step = (
      f'{np.mean(steps):.0f} ± {np.std(steps, ddof=1):.0f}'
      if len(steps) > 1
      else (f'{steps[0]}' if steps else '-')
    )
    final = (
      f'{np.mean(finals):.4f} ± {np.std(finals, ddof=1):.4f}'
      if len(finals) > 1
      else f'{finals[0]:.4f}'
    )
    print(f'| {row} | {len(steps)}/{len(hits)} | {step} | {final} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
