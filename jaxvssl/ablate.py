"""`jaxvssl ablate`: an ablation table over several seeds, every (row, seed) its own subprocess.

An ablation file is a Python file, like a config file, whose `get_ablation()` returns an
`Ablation` (docs/ablations.md):

  Ablation(name, rows=(Row(name, 'configs/x.py:variant', overrides, display), ...),
           overrides=(shared 'key=value', ...), stages=(Stage(name, config, overrides), ...),
           random_init=False, seeds=(0, 1, 2), description='')

For every seed k, each stage is trained first (`STAGES/<stage>/seed<k>`, STAGES = `--stages`,
default `OUT/stages`, which ablations with the same stage may share); a row's override
value may name a stage's workdir of the same seed as `{stage:<name>}`, and a row waits only for the
stages it names (a stage no unfinished row names is not trained). Then, for every row,
`python -m jaxvssl train --config=... --workdir=OUT/<row>/seed<k> --config.seed=k ...` and
`python -m jaxvssl evaluate --workdir=... --out=OUT/<row>/seed<k>/eval`, with their output in
`train.log` / `eval.log` next to `eval/`. With `random_init`, the first row's architecture is
also evaluated at random initialisation per seed (`OUT/random_init/seed<k>/eval`).

Resume: a (row, seed) whose `eval/summary.json` exists is skipped; otherwise `train` resumes from
its own checkpoint (a no-op when finished). A failed subprocess is recorded with its exit code and
the last lines of its log, the other pairs go on, and the command exits with `EXIT_FAILED`.

Record (`--record DIR`): the light files of every finished pair (`record_files`: config.json,
metrics.jsonl, eval/summary.json, the small results files; never checkpoints) are copied to
DIR/<row>/seed<k>/ as the pair finishes, and results.json / results.md next to them. A pair
recorded in DIR but absent from OUT is restored into OUT before planning, so it is skipped: DIR,
committed to git, carries a table that takes longer than one machine lives to the next machine.

Results: `OUT/results.json` and `OUT/results.md`, rewritten after every finished pair. For each
row and metric: mean, sample standard deviation over seeds (ddof=1; none with one seed), n and
the per-seed values; metrics = every number of `eval/summary.json`'s `metrics` plus the pretext
diagnostics `train/<key>` = the mean of `<key>` over the last `LAST_N_LOGGED_STEPS` training log
records of the run's `metrics.jsonl` (`perf/*` timings excluded).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from jaxvssl import config as config_lib
from jaxvssl import errors
from jaxvssl.evaluation import reports

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
# Pretext diagnostics: the mean over this many of the last training log records (metrics.jsonl
# lines that hold a 'loss'); keys starting with an excluded prefix are timings, not results.
LAST_N_LOGGED_STEPS = 5
DIAGNOSTIC_PREFIX = 'train/'
EXCLUDED_DIAGNOSTICS = ('perf/',)
# Held-out pretext diagnostics, from eval/summary.json (`jaxvssl evaluate`, evaluation/pretext.py):
# raw numbers like the training ones, shown next to them.
HELD_OUT_PREFIX = 'pretext/'
RAW_PREFIXES = (DIAGNOSTIC_PREFIX, HELD_OUT_PREFIX)
# The main table's columns: the evaluation metrics of `jaxvssl compare` (fractions, shown in
# percent); a column no row has is left out.
MAIN_COLUMNS: tuple[tuple[str, str], ...] = reports.COLUMNS
DIAGNOSTIC_FORMAT = '.4g'  # diagnostics are raw numbers (losses, similarities), not percent
# `--record DIR`: the files of a finished pair that a table is computed from, always, and the other
# small ones that show how it was run (by suffix and size: not e.g. retrieval_per_query.json, 0.7
# MB a pair); never anything under a checkpoints/ directory (weights, optimizer state).
RECORD_REQUIRED = ('config.json', 'metrics.jsonl', os.path.join('eval', 'summary.json'))
RECORD_SUFFIXES = ('.json', '.jsonl', '.md')
RECORD_MAX_BYTES = 100_000
RECORD_SKIPPED_DIRS = ('checkpoints',)
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
TAIL_LINES = 15  # lines of a failed subprocess's log kept in results.json / results.md
# Exit status of `jaxvssl ablate` when a pair failed or did not finish (the others finished).
EXIT_FAILED = 5

RANDOM_INIT = 'random_init'
RANDOM_INIT_DISPLAY = 'random init'
STAGES_DIR = 'stages'
RESERVED_NAMES = (RANDOM_INIT, STAGES_DIR)
NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.@+-]*\Z')
PLACEHOLDER = re.compile(r'\{stage:([^{}]*)\}')
ENV_ITEM = re.compile(r'[A-Za-z_][A-Za-z0-9_]*=\S*\Z')

# Runs one command with its output appended to a log file; returns the exit status.
RunCommand = Callable[[Sequence[str], str], int]


# --- the definition ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stage:
  """A training that rows of the same seed build on (e.g. CACL's frame encoder); not evaluated.

  Attributes:
    name: directory name (`STAGES/<name>/seed<k>`) and the `{stage:<name>}` placeholder.
    config: `path/to/config.py[:variant]`.
    overrides: `key=value` config overrides, after the ablation's shared ones.
  """

  name: str
  config: str
  overrides: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the table.

  Attributes:
    name: directory name (`OUT/<name>/seed<k>`) and what `--rows` selects.
    config: `path/to/config.py[:variant]`, relative to the current directory like `jaxvssl train`.
    overrides: `key=value` config overrides, after the shared ones; values may hold
      `{stage:<name>}`, replaced by that stage's workdir of the same seed.
    display: the name in the tables (default: `name`).
    env: `NAME=value` environment variables of the row's train and evaluate processes (and of
      the random-init evaluation when it is the first row), e.g. `JAXVSSL_CONV_IMPL=xla`; run
      through `env`, so the printed commands stay copy-pastable.
  """

  name: str
  config: str
  overrides: tuple[str, ...] = ()
  display: str = ''
  env: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Ablation:
  """An ablation: rows trained and evaluated once per seed.

  Attributes:
    name: the default output directory is `runs/ablations/<name>`.
    rows: the rows, in table order.
    overrides: `key=value` overrides of every stage and row (e.g. the data set).
    stages: trainings done per seed before the rows of that seed that name them.
    random_init: add a 'random init' row: the first row's backbone, randomly initialised with the
      seed (`jaxvssl evaluate --random_init` on the first row's workdir).
    seeds: the default seeds (`--seeds` replaces them).
    description: one paragraph printed under the title of results.md.
  """

  name: str
  rows: tuple[Row, ...]
  overrides: tuple[str, ...] = ()
  stages: tuple[Stage, ...] = ()
  random_init: bool = False
  seeds: tuple[int, ...] = DEFAULT_SEEDS
  description: str = ''


def _bad(path: str, what: str) -> errors.ConfigError:
  return errors.ConfigError(f'ablation file {path}: {what} (docs/ablations.md)')


def _check_overrides(path: str, where: str, overrides: Any) -> tuple[str, ...]:
  if isinstance(overrides, str) or not isinstance(overrides, (tuple, list)):
    raise _bad(path, f'{where} overrides={overrides!r} must be a tuple of "key=value" strings')
  out = []
  for item in overrides:
    if not isinstance(item, str) or '=' not in item:
      raise _bad(path, f'{where} override {item!r} must look like "key.sub=value"')
    item = item.removeprefix('--').removeprefix('config.')
    if item.split('=', 1)[0] == 'seed':
      raise _bad(path, f'{where} override {item!r}: set seeds with Ablation.seeds or --seeds')
    out.append(item)
  return tuple(out)


def _check_env(path: str, where: str, env: Any) -> tuple[str, ...]:
  if isinstance(env, str) or not isinstance(env, (tuple, list)):
    raise _bad(path, f'{where} env={env!r} must be a tuple of "NAME=value" strings')
  for item in env:
    if not isinstance(item, str) or not ENV_ITEM.match(item):
      raise _bad(path, f'{where} env item {item!r} must look like "NAME=value"')
  return tuple(env)


def _check_name(path: str, where: str, name: Any) -> str:
  if not isinstance(name, str) or not NAME.match(name):
    raise _bad(
      path, f'{where} name {name!r} must be letters, digits and _.@+- (it names a directory)'
    )
  return name


def _check_config_spec(path: str, where: str, spec: Any) -> str:
  if not isinstance(spec, str) or not spec.partition(':')[0].endswith('.py'):
    raise _bad(path, f'{where} config={spec!r} must look like "configs/file.py:variant"')
  return spec


def check_ablation(ablation: Any, path: str) -> Ablation:
  """Validates an ablation; returns it with every sequence a tuple. Raises ConfigError."""
  if not isinstance(ablation, Ablation):
    raise _bad(
      path, f'get_ablation() returned {type(ablation).__name__}, not a jaxvssl.ablate.Ablation'
    )
  _check_name(path, 'the ablation', ablation.name)
  if not isinstance(ablation.rows, (tuple, list)) or not ablation.rows:
    raise _bad(path, f'rows={ablation.rows!r} must be a non-empty tuple of Row')
  stages = []
  for stage in ablation.stages:
    if not isinstance(stage, Stage):
      raise _bad(path, f'stages holds {stage!r}, not a jaxvssl.ablate.Stage')
    where = f'stage {stage.name!r}'
    overrides = _check_overrides(path, where, stage.overrides)
    if any(PLACEHOLDER.search(o) for o in overrides):
      raise _bad(path, f'{where}: a stage cannot use {{stage:...}} placeholders')
    stages.append(
      Stage(
        _check_name(path, 'stage', stage.name),
        _check_config_spec(path, where, stage.config),
        overrides,
      )
    )
  stage_names = [s.name for s in stages]
  rows = []
  for row in ablation.rows:
    if not isinstance(row, Row):
      raise _bad(path, f'rows holds {row!r}, not a jaxvssl.ablate.Row')
    where = f'row {row.name!r}'
    name = _check_name(path, 'row', row.name)
    if name in RESERVED_NAMES:
      raise _bad(path, f'{where}: the names {RESERVED_NAMES} are reserved')
    overrides = _check_overrides(path, where, row.overrides)
    for item in overrides:
      for stage in PLACEHOLDER.findall(item):
        if stage not in stage_names:
          raise _bad(
            path, f'{where} override {item!r} names stage {stage!r}; stages: {stage_names}'
          )
    rows.append(
      Row(
        name,
        _check_config_spec(path, where, row.config),
        overrides,
        row.display or name,
        _check_env(path, where, row.env),
      )
    )
  names = [r.name for r in rows] + stage_names
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise _bad(path, f'row and stage names must be unique; repeated: {duplicates}')
  seeds = check_seeds(ablation.seeds, f'ablation file {path}: seeds')
  shared = _check_overrides(path, 'shared', ablation.overrides)
  if any(PLACEHOLDER.search(o) for o in shared):
    raise _bad(path, 'shared overrides cannot use {stage:...} placeholders (rows can)')
  return dataclasses.replace(
    ablation,
    rows=tuple(rows),
    stages=tuple(stages),
    overrides=shared,
    seeds=seeds,
    random_init=bool(ablation.random_init),
  )


def check_seeds(seeds: Any, where: str) -> tuple[int, ...]:
  """A non-empty tuple of distinct non-negative ints, else ConfigError naming `where`."""
  if isinstance(seeds, str) or not isinstance(seeds, (tuple, list)) or not seeds:
    raise errors.ConfigError(f'{where}={seeds!r} must be a non-empty list of seeds like 0,1,2')
  for seed in seeds:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
      raise errors.ConfigError(f'{where}: {seed!r} is not a non-negative integer; use e.g. 0,1,2')
  if len(set(seeds)) != len(seeds):
    raise errors.ConfigError(f'{where}={list(seeds)} repeats a seed')
  return tuple(seeds)


def parse_seeds(text: str) -> tuple[int, ...]:
  """`'0,1,2'` -> (0, 1, 2); anything else is a ConfigError naming the value."""
  parts = [p.strip() for p in text.split(',')]
  if not all(re.fullmatch(r'\d+', p) for p in parts):
    raise errors.ConfigError(
      f'--seeds {text!r}: give comma-separated non-negative integers, e.g. --seeds 0,1,2'
    )
  return check_seeds([int(p) for p in parts], f'--seeds {text!r}')


def load_ablation(path: str) -> Ablation:
  """Runs an ablation file's `get_ablation()` and validates what it returns."""
  if not os.path.isfile(path):
    raise errors.ConfigError(
      f'ablation file {path!r} does not exist; give a file like configs/ablations/cacl_table1.py'
    )
  spec = importlib.util.spec_from_file_location(f'_jaxvssl_ablation_{abs(hash(path))}', path)
  module = importlib.util.module_from_spec(spec)
  try:
    with config_lib.package_root_on_path(path):
      spec.loader.exec_module(module)  # type: ignore[union-attr]
  except Exception as e:  # pylint: disable=broad-except
    raise _bad(path, f'running it failed: {errors.summary(e)}') from e
  if not callable(getattr(module, 'get_ablation', None)):
    raise _bad(path, 'it has no get_ablation() function returning a jaxvssl.ablate.Ablation')
  try:
    ablation = module.get_ablation()
  except Exception as e:  # pylint: disable=broad-except
    raise _bad(path, f'get_ablation() failed: {errors.summary(e)}') from e
  return check_ablation(ablation, path)


# --- the plan ----------------------------------------------------------------------------------


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


def _jaxvssl(python: str, *args: str, env: Sequence[str] = ()) -> tuple[str, ...]:
  prefix = ('env', *env) if env else ()
  return (*prefix, python, '-m', 'jaxvssl', *args)


def _substitute(item: str, stage_dirs: Mapping[str, str]) -> str:
  return PLACEHOLDER.sub(lambda m: stage_dirs[m.group(1)], item)


def stage_dir(stages: str, stage: str, seed: int) -> str:
  """A stage's run directory under `stages` (`--stages`, default `OUT/stages`)."""
  return os.path.join(stages, stage, f'seed{seed}')


def pair_dir(out: str, row: str, seed: int) -> str:
  return os.path.join(out, row, f'seed{seed}')


def stage_overrides(
  ablation: Ablation, stage: Stage, seed: int, data_dir: str | None
) -> tuple[str, ...]:
  """Shared, then the stage's overrides, then `--data_dir`, then the seed."""
  data = (f'data.data_dir={data_dir}',) if data_dir else ()
  return (*ablation.overrides, *stage.overrides, *data, f'seed={seed}')


def row_items(
  ablation: Ablation, row: Row, extra: Sequence[str] = (), data_dir: str | None = None
) -> tuple[str, ...]:
  """A row's overrides as written: shared, the row's, `--data_dir`, then the command line's."""
  data = (f'data.data_dir={data_dir}',) if data_dir else ()
  return (*ablation.overrides, *row.overrides, *data, *extra)


def row_overrides(
  ablation: Ablation,
  row: Row,
  seed: int,
  stages: str,
  extra: Sequence[str] = (),
  data_dir: str | None = None,
) -> tuple[str, ...]:
  """`row_items` with `{stage:<name>}` replaced by this seed's stage workdir, then the seed."""
  stage_dirs = {s.name: stage_dir(stages, s.name, seed) for s in ablation.stages}
  items = row_items(ablation, row, extra, data_dir)
  return tuple(_substitute(item, stage_dirs) for item in items) + (f'seed={seed}',)


def plan(
  ablation: Ablation,
  out: str,
  seeds: Sequence[int],
  rows: Sequence[Row],
  *,
  random_init: bool,
  extra_overrides: Sequence[str] = (),
  data_dir: str | None = None,
  stages: str | None = None,
  python: str = sys.executable,
) -> list[Task]:
  """Every task, seed by seed: the stages (under `stages`, default `OUT/stages`), the rows, then
  random init."""
  out = os.path.abspath(out)
  stages = os.path.abspath(stages) if stages else os.path.join(out, STAGES_DIR)
  # Evaluations read the data set from the run's config.json unless told: `--data_dir` is passed
  # on, so a run restored from a record made on another machine is evaluated on this one's data.
  eval_data = (f'--config.data.data_dir={data_dir}',) if data_dir else ()
  tasks = []
  for seed in seeds:
    stage_keys = []
    for stage in ablation.stages:
      workdir = stage_dir(stages, stage.name, seed)
      overrides = stage_overrides(ablation, stage, seed, data_dir)
      argv = _jaxvssl(
        python,
        'train',
        f'--config={stage.config}',
        f'--workdir={workdir}',
        *(f'--config.{o}' for o in overrides),
      )
      task = Task(
        'stage',
        stage.name,
        seed,
        workdir,
        (Phase('train', argv, os.path.join(workdir, 'train.log')),),
        summary=None,
        config=stage.config,
        overrides=overrides,
      )
      tasks.append(task)
      stage_keys.append(task.key)
    for row in rows:
      workdir = pair_dir(out, row.name, seed)
      overrides = row_overrides(ablation, row, seed, stages, extra_overrides, data_dir)
      items = row_items(ablation, row, extra_overrides, data_dir)
      used = {name for item in items for name in PLACEHOLDER.findall(item)}
      train = _jaxvssl(
        python,
        'train',
        f'--config={row.config}',
        f'--workdir={workdir}',
        *(f'--config.{o}' for o in overrides),
        env=row.env,
      )
      evaluate = _jaxvssl(
        python,
        'evaluate',
        f'--workdir={workdir}',
        f'--out={os.path.join(workdir, "eval")}',
        *eval_data,
        env=row.env,
      )
      tasks.append(
        Task(
          'row',
          row.name,
          seed,
          workdir,
          (
            Phase('train', train, os.path.join(workdir, 'train.log')),
            Phase('evaluate', evaluate, os.path.join(workdir, 'eval.log')),
          ),
          summary=os.path.join(workdir, 'eval', 'summary.json'),
          deps=tuple(key for key in stage_keys if key[1] in used),  # the stages it names
          config=row.config,
          overrides=overrides,
          recorded_overrides=items,
        )
      )
    if random_init:
      first = ablation.rows[0]
      workdir = pair_dir(out, RANDOM_INIT, seed)
      source = pair_dir(out, first.name, seed)
      argv = _jaxvssl(
        python,
        'evaluate',
        f'--workdir={source}',
        '--random_init',
        f'--out={os.path.join(workdir, "eval")}',
        *eval_data,
        env=first.env,
      )
      selected = {r.name for r in rows}
      tasks.append(
        Task(
          RANDOM_INIT,
          RANDOM_INIT,
          seed,
          workdir,
          (Phase('evaluate', argv, os.path.join(workdir, 'eval.log')),),
          summary=os.path.join(workdir, 'eval', 'summary.json'),
          after=(('row', first.name, seed),) if first.name in selected else (),
          requires=os.path.join(source, 'config.json'),
          config=first.config,
        )
      )
  return tasks


def check_configs(
  ablation: Ablation, path: str, tasks: Sequence[Task]
) -> dict[tuple[str, str, int], config_lib.ConfigDict]:
  """Loads every stage's and row's config of every seed with its overrides (by task key), naming
  the task on a ConfigError: a typo fails before hours of training, not in the middle."""
  configs = {}
  for task in tasks:
    if task.kind == RANDOM_INIT:
      continue
    try:
      configs[task.key] = config_lib.load_config(task.config, task.overrides)
    except errors.ConfigError as e:
      kind = 'stage' if task.kind == 'stage' else 'row'
      raise errors.ConfigError(f'ablation file {path}: {kind} {task.name!r}: {e}') from None
  return configs


def check_random_init_sources(
  ablation: Ablation,
  tasks: Sequence[Task],
  outcomes: Mapping[tuple[str, str, int], Outcome],
  path: str,
) -> None:
  """Random init of a seed whose first row `--rows` leaves out, never ran and is not restored from
  `--record` has no config to evaluate and can never run. Says so before anything runs, instead
  of failing that pair after the others."""
  first = ablation.rows[0].name
  for task in tasks:
    if task.kind != RANDOM_INIT or task.after or task.key in outcomes:
      continue
    if task.requires and not os.path.exists(task.requires):
      raise errors.ConfigError(
        f'--rows: random init of seed {task.seed} evaluates the first row {first!r} of '
        f'{path}, and {task.requires} does not exist; add {first!r} to --rows (a finished '
        'run of it is restored from --record, not trained again)'
      )


def check_stage_workdirs(
  tasks: Sequence[Task],
  configs: Mapping[tuple[str, str, int], config_lib.ConfigDict],
  outcomes: Mapping[tuple[str, str, int], Outcome],
) -> None:
  """A stage to run whose workdir holds a run of another config (an edited ablation file, or a
  `--stages` directory shared with an ablation whose stage differs) would be refused by `train`
  and fail every row of its seed: says so before anything runs. The same rule as train's resume
  (`config_lib.config_diff` against the run's config.json)."""
  for task in tasks:
    if task.kind != 'stage' or task.key in outcomes:
      continue
    saved = os.path.join(task.dir, 'config.json')
    if not os.path.exists(saved):
      continue
    try:
      with open(saved) as f:
        old = json.load(f)
    except (OSError, ValueError) as e:
      raise errors.ConfigError(
        f'stage {task.name!r} seed {task.seed}: unreadable {saved} ({errors.summary(e)}); move '
        f'{task.dir} away to train the stage again'
      ) from None
    changed = config_lib.config_diff(old, json.loads(configs[task.key].to_json_best_effort()))
    if changed:
      raise errors.ConfigError(
        f'stage {task.name!r} seed {task.seed}: {task.dir} holds a run of another config '
        f'({"; ".join(changed)}); give this ablation its own --stages directory, or move that '
        'one away to train the stage again'
      )


def data_builds(
  configs: Sequence[config_lib.ConfigDict], out: str, python: str = sys.executable
) -> list[Phase]:
  """`jaxvssl build-data` for every synthetic_motion variant / data_dir the configs read."""
  wanted = []
  for config in configs:
    name = config.data.name
    if name.startswith('synthetic_motion/'):
      if not config.data.data_dir:
        raise errors.ConfigError(
          f'config.data.data_dir is not set for {name}, which the runner builds first: set '
          "'data.data_dir=DIR' in the ablation's overrides or pass --data_dir DIR"
        )
      item = (name.split('/', 1)[1], os.path.abspath(config.data.data_dir))
      if item not in wanted:
        wanted.append(item)
  return [
    Phase(
      'build-data',
      _jaxvssl(python, 'build-data', '--data_dir', data_dir, '--variant', variant),
      os.path.join(out, 'build-data.log'),
    )
    for variant, data_dir in wanted
  ]


# --- running -----------------------------------------------------------------------------------

_children: set[subprocess.Popen] = set()
_children_lock = threading.RLock()  # re-entrant: the signal handler takes it too


def run_subprocess(argv: Sequence[str], log: str) -> int:
  """Runs `argv` with stdout and stderr appended to `log`; returns its exit status.

  The child gets a session of its own, so a Ctrl-C on the terminal reaches only this runner,
  which forwards exactly one signal to each child (a second one would stop a training at once).
  """
  os.makedirs(os.path.dirname(log), exist_ok=True)
  env = dict(os.environ)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  env['PYTHONUNBUFFERED'] = '1'
  with open(log, 'a') as f:
    f.write(f'=== {_now()} {shlex.join(argv)}\n')
    f.flush()
    child = subprocess.Popen(
      list(argv),
      stdout=f,
      stderr=subprocess.STDOUT,
      stdin=subprocess.DEVNULL,
      env=env,
      start_new_session=True,
    )
    with _children_lock:
      _children.add(child)
    try:
      return child.wait()
    except BaseException:  # e.g. KeyboardInterrupt outside `jaxvssl ablate`'s own handler
      child.terminate()  # SIGTERM: a training saves a checkpoint and stops
      raise
    finally:
      with _children_lock:
        _children.discard(child)


def _signal_children(signum: int) -> None:
  with _children_lock:
    for child in list(_children):
      try:
        child.send_signal(signum)
      except OSError:
        pass


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


def tail(path: str, lines: int = TAIL_LINES) -> tuple[str, ...]:
  try:
    with open(path, errors='replace') as f:
      return tuple(line.rstrip('\n') for line in f.readlines()[-lines:])
  except OSError:
    return ()


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


_print_lock = threading.RLock()  # re-entrant: the signal handler prints


def _say(message: str) -> None:
  with _print_lock:
    print(f'[ablate {time.strftime("%H:%M:%S")}] {message}', flush=True)


def run_task(task: Task, run_command: RunCommand) -> Outcome:
  """Runs the task's phases in order; the first non-zero exit status stops it."""
  t0 = time.perf_counter()
  for phase in task.phases:
    code = run_command(phase.argv, phase.log)
    if code != 0:
      return Outcome(
        'failed' if code not in (130, 143) else 'interrupted',
        phase=phase.name,
        exit_code=code,
        log=phase.log,
        tail=tail(phase.log),
        seconds=time.perf_counter() - t0,
      )
  if task.summary and not os.path.exists(task.summary):
    last = task.phases[-1]
    return Outcome(
      'failed',
      phase=last.name,
      log=last.log,
      tail=tail(last.log),
      reason=f'{last.name} exited 0 but wrote no {task.summary}',
      seconds=time.perf_counter() - t0,
    )
  return Outcome('done', seconds=time.perf_counter() - t0)


@dataclasses.dataclass
class _Stop:
  signum: int = 0


@contextlib.contextmanager
def _handle_signals(stop: _Stop) -> Iterator[None]:
  """While running: SIGINT / SIGTERM stop scheduling and are forwarded once to every child."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    del frame
    first = not stop.signum
    stop.signum = stop.signum or signum
    _say(
      f'{signal.Signals(signum).name}: no new pairs; the running ones save and stop'
      if first
      else f'{signal.Signals(signum).name} again: stopping the running pairs at once'
    )
    _signal_children(signum)

  previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, h in previous.items():
      signal.signal(s, h)


def _blocked(task: Task, outcomes: Mapping[tuple[str, str, int], Outcome]) -> Outcome | None:
  """Why `task` can never run (a dependency failed, a required file is missing), or None."""
  failed = [d for d in task.deps if d in outcomes and not outcomes[d].ok]
  if failed:
    kind, name, seed = failed[0]
    what = f'stage {name}' if kind == 'stage' else name
    return Outcome(
      'failed' if outcomes[failed[0]].status == 'failed' else 'not_run',
      reason=f'{what} seed {seed}: {outcomes[failed[0]].why()}',
    )
  ready = all(d in outcomes for d in task.after)
  if task.requires and ready and not os.path.exists(task.requires):
    return Outcome('not_run', reason=f'{task.requires} does not exist')
  return None


def execute(
  tasks: Sequence[Task],
  outcomes: dict[tuple[str, str, int], Outcome],
  *,
  jobs: int,
  run_command: RunCommand,
  on_update: Callable[[], None] = lambda: None,
  stop: _Stop | None = None,
) -> None:
  """Runs every task without an outcome yet, `jobs` at a time, in order as dependencies allow.

  A task whose `deps` failed, or whose `requires` is missing when it could start, is not run;
  `outcomes` is filled in place and `on_update` is called after each change.
  """
  stop = stop or _Stop()
  pending = [t for t in tasks if t.key not in outcomes]
  running: dict[concurrent.futures.Future, Task] = {}
  total, finished = len(pending), 0
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    while pending or running:
      for task in list(pending):
        blocked = _blocked(task, outcomes)
        if blocked:
          outcomes[task.key] = blocked
          pending.remove(task)
          finished += 1
          _say(f'not running {task.label()}: {blocked.reason}')
          on_update()
      if not stop.signum:
        for task in [t for t in pending if all(d in outcomes for d in t.deps + t.after)]:
          if len(running) >= jobs:
            break
          pending.remove(task)
          _say(f'start {task.label()} (log: {task.phases[0].log})')
          running[pool.submit(run_task, task, run_command)] = task
      if not running:
        break
      done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
      for future in done:
        task = running.pop(future)
        try:
          outcome = future.result()
        except Exception as e:  # pylint: disable=broad-except
          outcome = Outcome('failed', reason=f'the runner failed: {errors.summary(e)}')
        if stop.signum and outcome.status == 'failed' and outcome.exit_code is not None:
          outcome.status = 'interrupted'  # stopped by the signal we forwarded
        outcomes[task.key] = outcome
        finished += 1
        if outcome.ok:
          _say(f'done {task.label()} in {outcome.seconds / 60:.1f} min ({finished}/{total})')
        else:
          last = f'; last log line: {outcome.tail[-1]}' if outcome.tail else ''
          _say(f'{outcome.status.upper()} {task.label()}: {outcome.why()} ({outcome.log}){last}')
        on_update()
  for task in pending:
    outcomes[task.key] = Outcome('not_run', reason='stopped before it started')


# --- results -----------------------------------------------------------------------------------


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


def git_commit(directory: str | None = None) -> str:
  """`git rev-parse HEAD` of the jaxvssl checkout, `-dirty` when tracked files differ."""
  directory = directory or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, GIT_OPTIONAL_LOCKS='0')  # never touches the index
  try:
    head = subprocess.run(
      ['git', 'rev-parse', 'HEAD'], cwd=directory, capture_output=True, text=True, timeout=60
    )
    if head.returncode:
      return 'unknown (not a git checkout)'
    status = subprocess.run(
      ['git', 'status', '--porcelain', '--untracked-files=no'],
      cwd=directory,
      capture_output=True,
      text=True,
      env=env,
      timeout=60,
    )
  except (OSError, subprocess.SubprocessError) as e:
    return f'unknown ({errors.summary(e)})'
  return head.stdout.strip() + ('-dirty' if status.stdout.strip() else '')


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or 'unknown'


def machine_info(python: str = sys.executable) -> dict[str, Any]:
  """CPU model, core count, Python, jax version and the backend the subprocesses get.

  The backend is probed in a subprocess, so this runner never claims an accelerator.
  """
  try:
    jax_version = importlib.metadata.version('jax')
  except importlib.metadata.PackageNotFoundError:
    jax_version = 'not installed'
  probe = 'import jax; d = jax.devices(); print(jax.default_backend(), len(d), d[0].device_kind)'
  try:
    result = subprocess.run(
      [python, '-c', probe], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    backend, devices, kind = result.stdout.strip().splitlines()[-1].split(' ', 2)
  except (OSError, subprocess.SubprocessError, ValueError, IndexError):
    backend, devices, kind = 'unknown', '0', 'unknown'
  return {
    'cpu': cpu_model(),
    'cores': os.cpu_count(),
    'usable_cores': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None,
    'python': platform.python_version(),
    'jax': jax_version,
    'backend': backend,
    'devices': int(devices) if devices.isdigit() else 0,
    'device_kind': kind,
  }


def collect(
  ablation: Ablation,
  tasks: Sequence[Task],
  outcomes: Mapping[tuple[str, str, int], Outcome],
  header: Mapping[str, Any],
) -> dict[str, Any]:
  """results.json's payload: per row and metric mean, std, n and per-seed values; failures."""
  table_rows: dict[str, dict[str, Any]] = {}
  displays = {r.name: r.display for r in ablation.rows}
  displays[RANDOM_INIT] = RANDOM_INIT_DISPLAY
  envs = {r.name: list(r.env) for r in ablation.rows}
  envs[RANDOM_INIT] = list(ablation.rows[0].env)
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
  ordered = ([RANDOM_INIT] if RANDOM_INIT in table_rows else []) + [
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
  if key.startswith(RAW_PREFIXES):
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
  compared = [(k, h) for k, h in columns if k in DIFFERENCE_METRICS]
  if any(d['metrics'] for d in differences.values()) and compared:
    lines += [
      '## Against the row above (percent points)',
      '',
      "Each cell: mean minus the mean of the row above, then the seeds' spread (the larger of the "
      "two rows' std); a difference no larger than the spread is no difference. Fewer than "
      f'{MIN_SEEDS_FOR_VERDICT} seeds on either side: no verdict.',
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
    (k for k in present if k.startswith(RAW_PREFIXES)),
    key=lambda k: (not k.startswith(DIAGNOSTIC_PREFIX), k),
  )
  if diagnostics:
    lines += [
      f'## Pretext diagnostics (`train/`: mean of the last {LAST_N_LOGGED_STEPS} logged training '
      f'steps; `{HELD_OUT_PREFIX}`: on held-out test clips, `jaxvssl evaluate`; mean ± std over '
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
  return key[len(DIAGNOSTIC_PREFIX) :] if key.startswith(DIAGNOSTIC_PREFIX) else key


def write_results(out: str, results: Mapping[str, Any]) -> tuple[str, str]:
  """Writes OUT/results.json and OUT/results.md (each through a temporary file and a rename)."""
  os.makedirs(out, exist_ok=True)
  paths = (os.path.join(out, 'results.json'), os.path.join(out, 'results.md'))
  texts = (json.dumps(results, indent=2, default=repr) + '\n', render_markdown(results))
  for path, text in zip(paths, texts):
    with open(path + '.tmp', 'w') as f:
      f.write(text)
    os.replace(path + '.tmp', path)
  return paths


# --- records that outlive OUT ------------------------------------------------------------------


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


def _copy(src: str, dst: str) -> None:
  """Copies through a temporary file and a rename: a killed copy leaves no half file."""
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  shutil.copyfile(src, dst + '.tmp')
  os.replace(dst + '.tmp', dst)


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
  """Copies the light files of every finished pair, and OUT's results files, into `record`."""
  for task in _finished_pairs(tasks):
    target = os.path.join(record, os.path.relpath(task.dir, out))
    for name in record_files(task.dir):
      _copy(os.path.join(task.dir, name), os.path.join(target, name))
  for name in ('results.json', 'results.md'):
    if os.path.exists(os.path.join(out, name)):
      _copy(os.path.join(out, name), os.path.join(record, name))


def check_record(record: str, out: str) -> str:
  """The absolute record directory; a ConfigError when it is OUT or lies inside it."""
  record = os.path.abspath(record)
  if os.path.commonpath([record, out]) == out:
    raise errors.ConfigError(
      f'--record {record}: must lie outside --out {out} (it keeps what OUT may lose)'
    )
  return record


# --- the command -------------------------------------------------------------------------------


def select_rows(ablation: Ablation, names: Sequence[str] | None, path: str) -> tuple[list, bool]:
  """(rows, random_init) chosen by `--rows` (all of them, and random init, when None)."""
  if names is None:
    return list(ablation.rows), ablation.random_init
  known = [r.name for r in ablation.rows] + ([RANDOM_INIT] if ablation.random_init else [])
  unknown = [n for n in names if n not in known]
  if unknown or not names:
    raise errors.ConfigError(
      f'--rows: unknown row {unknown[0] if unknown else "(none)"!r} of {path}; rows: {known}'
    )
  return [r for r in ablation.rows if r.name in names], RANDOM_INIT in names


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
  run_command: RunCommand = run_subprocess,
  machine: Callable[[], dict[str, Any]] = machine_info,
  python: str = sys.executable,
) -> dict[str, Any]:
  """Runs (or, with dry_run, prints) an ablation; returns results.json's payload.

  The payload's 'exit_code' is 0 when every pair finished, `EXIT_FAILED` when one failed, and
  128 + the signal when SIGINT / SIGTERM stopped it. `run_command(argv, log) -> exit status`
  runs each subprocess (injectable for tests). `record`: see `--record` in the module docstring.
  `collect_only`: run nothing, write the results of the pairs already finished (status
  'partial' while some are missing).
  """
  ablation = load_ablation(path)
  seeds = check_seeds(list(seeds), '--seeds') if seeds is not None else ablation.seeds
  selected, random_init = select_rows(ablation, rows, path)
  if jobs < 1:
    raise errors.ConfigError(f'--jobs {jobs}: must be at least 1')
  extra = _check_overrides(path, 'command-line', list(extra_overrides))
  out = os.path.abspath(out or os.path.join('runs', 'ablations', ablation.name))
  data_dir = os.path.abspath(data_dir) if data_dir else None
  tasks = plan(
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
  configs = check_configs(ablation, path, tasks)
  record = check_record(record, out) if record else None
  restored = restore_records(tasks, out, record, copy=not dry_run) if record else []

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
    check_random_init_sources(ablation, tasks, outcomes, path)
    check_stage_workdirs(tasks, configs, outcomes)
  builds = data_builds(list(configs.values()), out, python) if needed else []

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
    'date': _now(),
    'git_commit': git_commit(),
    'machine': machine(),
    'seeds': list(seeds),
    'out': out,
  }
  _say(
    f'{ablation.name}: {len(tasks)} tasks ({len(outcomes)} already done) for seeds '
    f'{list(seeds)}, {jobs} at a time -> {out}'
  )

  def update() -> None:
    write_results(out, collect(ablation, tasks, outcomes, header))
    if record:
      save_records(tasks, out, record)

  stop = _Stop()
  with _handle_signals(stop):
    for phase in builds:
      _say(f'building the data set: {shlex.join(phase.argv[3:])} (log: {phase.log})')
      code = run_command(phase.argv, phase.log)
      if stop.signum:
        raise errors.TrainingInterrupted(
          f'interrupted by {signal.Signals(stop.signum).name} while building the data set; '
          'rerun the same command to go on',
          stop.signum,
        )
      if code != 0:
        last = tail(phase.log, 1)
        raise errors.DataNotFoundError(
          f'building the data set failed (exit {code}): {shlex.join(phase.argv[3:])}; see '
          f'{phase.log}' + (f': {last[0]}' if last else '')
        )
    if collect_only:
      for task in tasks:
        outcomes.setdefault(task.key, Outcome('not_run', reason='not finished (--collect)'))
    else:
      execute(tasks, outcomes, jobs=jobs, run_command=run_command, on_update=update, stop=stop)
  results = collect(ablation, tasks, outcomes, header)
  if collect_only and results['status'] != 'complete':
    results['status'] = 'partial'  # what has finished so far, nothing was stopped
  json_path, md_path = write_results(out, results)
  if record:
    save_records(tasks, out, record)
  if stop.signum:
    results['exit_code'] = 128 + stop.signum
  else:
    ok = ('complete', 'partial') if collect_only else ('complete',)
    results['exit_code'] = 0 if results['status'] in ok else EXIT_FAILED
  _say(f'written {json_path} and {md_path}')
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
  parser.add_argument('--rows', default=None, help=f'comma-separated subset (and {RANDOM_INIT})')
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
    seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
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
