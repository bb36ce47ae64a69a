"""`--record DIR`: the light files of every finished pair (never checkpoints), kept outside OUT
and restored into a fresh OUT, so a table goes on across machines (several at once, each with its
own seeds: every one writes the same table of everything recorded, `command.record_results`)."""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Sequence

from jaxvssl import errors
from jaxvssl.ablate.tasks import Task

# `--record DIR`: the files of a finished pair that a table is computed from, always, and the other
# small ones that show how it was run (by suffix and size: not e.g. retrieval_per_query.json, 0.7
# MB a pair); never anything under a checkpoints/ directory (weights, optimizer state).
RECORD_REQUIRED = ('config.json', 'metrics.jsonl', os.path.join('eval', 'summary.json'))
RECORD_SUFFIXES = ('.json', '.jsonl', '.md')
RECORD_MAX_BYTES = 100_000
RECORD_SKIPPED_DIRS = ('checkpoints',)
_SEED_DIR = re.compile(r'seed(\d+)')


def record_files(directory: str) -> list[str]:
  """What `--record` keeps of `directory`, relative and sorted: `RECORD_REQUIRED`, and every
  other `RECORD_SUFFIXES` file of at most `RECORD_MAX_BYTES` outside checkpoints/."""
  found = []
  for root, dirs, files in os.walk(directory):
    dirs[:] = sorted(d for d in dirs if d not in RECORD_SKIPPED_DIRS)
    for name in files:
      path = os.path.join(root, name)
      relative = os.path.relpath(path, directory)
      if relative in RECORD_REQUIRED or (
        name.endswith(RECORD_SUFFIXES) and os.path.getsize(path) <= RECORD_MAX_BYTES
      ):
        found.append(relative)
  return sorted(found)


def recorded_seeds(record: str, rows: Sequence[str]) -> set[int]:
  """The seeds of the pairs of `rows` finished in `record` (`DIR/<row>/seed<k>/eval/summary.json`)."""
  seeds = set()
  for row in rows:
    directory = os.path.join(glob.escape(record), glob.escape(row))
    for summary in glob.glob(os.path.join(directory, 'seed*', 'eval', 'summary.json')):
      match = _SEED_DIR.fullmatch(os.path.basename(os.path.dirname(os.path.dirname(summary))))
      if match:
        seeds.add(int(match.group(1)))
  return seeds


def _copy(src: str, dst: str) -> None:
  """Copies through a temporary file of this process and a rename: a killed copy leaves no half
  file, and two runners copying into one record never share a temporary file."""
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  tmp = f'{dst}.{os.getpid()}.tmp'
  shutil.copyfile(src, tmp)
  os.replace(tmp, dst)


def _finished_pairs(tasks: Sequence[Task]) -> list[Task]:
  return [t for t in tasks if t.summary and os.path.exists(t.summary)]


def restore_records(
  tasks: Sequence[Task], out: str, record: str, *, copy: bool = True
) -> list[Task]:
  """Copies each pair recorded in `record` whose summary is missing from `out` into `out`.

  Returns the restored tasks (then skipped like any finished pair); with copy=False (a dry run)
  only which ones would be. The recorded files replace the pair's: a half-trained run of a pair
  that finished elsewhere is superseded by the finished one.
  """
  restored = []
  for task in tasks:
    if not task.summary or os.path.exists(task.summary):
      continue
    relative = os.path.relpath(task.dir, out)
    source = os.path.join(record, relative)
    if not os.path.exists(os.path.join(source, os.path.relpath(task.summary, task.dir))):
      continue
    for name in record_files(source) if copy else ():
      _copy(os.path.join(source, name), os.path.join(task.dir, name))
    restored.append(task)
  return restored


def save_records(tasks: Sequence[Task], out: str, record: str) -> None:
  """Copies the light files of every finished pair into `record` (the record's results files
  are written by the command: the table of everything recorded, not only this run's seeds)."""
  for task in _finished_pairs(tasks):
    target = os.path.join(record, os.path.relpath(task.dir, out))
    for name in record_files(task.dir):
      _copy(os.path.join(task.dir, name), os.path.join(target, name))


def check_record(record: str, out: str) -> str:
  """The absolute record directory; a ConfigError when it is OUT or lies inside it."""
  record = os.path.abspath(record)
  if os.path.commonpath([record, out]) == out:
    raise errors.ConfigError(
      f'--record {record}: must lie outside --out {out} (it keeps what OUT may lose)'
    )
  return record
