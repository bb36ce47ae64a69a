"""The units of work of an ablation: a `Task` (a stage, a (row, seed) pair or a random-init
evaluation) of `Phase`s, each one subprocess command, and the `Outcome` of running it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

# Runs one command with its output appended to a log file; returns the exit status.
RunCommand = Callable[[Sequence[str], str], int]


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str  # 'train' | 'evaluate' | 'build-data'
  argv: tuple[str, ...]
  log: str


@dataclasses.dataclass(frozen=True)
class Task:
  """One unit of work: a stage, a (row, seed) pair or a random-init evaluation of one seed.

  `deps` must have succeeded first (a row needs the stages it names); `after` must have finished,
  successfully or not (random init needs the first row's config.json, which a training writes
  even when it fails later); `requires`: a file that must exist when the task starts (that
  config.json), or it is not run.
  """

  kind: str  # 'stage' | 'row' | 'random_init'
  name: str
  seed: int
  dir: str
  phases: tuple[Phase, ...]
  summary: str | None  # the task is done when this exists (None: always run)
  deps: tuple[tuple[str, str, int], ...] = ()
  after: tuple[tuple[str, str, int], ...] = ()
  requires: str | None = None
  config: str = ''
  overrides: tuple[str, ...] = ()  # what the config is loaded with (placeholders replaced, seed)
  recorded_overrides: tuple[str, ...] = ()  # for results.json: as written, without the seed

  @property
  def key(self) -> tuple[str, str, int]:
    return (self.kind, self.name, self.seed)

  def label(self) -> str:
    kind = 'stage ' if self.kind == 'stage' else ''
    return f'{kind}{self.name} seed {self.seed}'


@dataclasses.dataclass
class Outcome:
  """What became of a task.

  status: 'done' (ran now), 'skipped' (already done, or not needed), 'failed',
  'interrupted' (stopped by a signal; rerun to resume) or 'not_run' (never started).
  """

  status: str
  phase: str = ''
  exit_code: int | None = None
  log: str = ''
  tail: tuple[str, ...] = ()
  reason: str = ''
  seconds: float = 0.0

  @property
  def ok(self) -> bool:
    return self.status in ('done', 'skipped')

  def why(self) -> str:
    """'train exit 3', or the reason when no subprocess failed."""
    if self.exit_code is not None:
      return f'{self.phase} exit {self.exit_code}'
    return self.reason or self.status
