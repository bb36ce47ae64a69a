"""An ablation file's definition: `Ablation`, `Row` and `Stage`, loaded and checked before anything
runs (docs/ablations.md#defining-an-ablation)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from typing import Any

from jaxvssl import config as config_lib
from jaxvssl import errors

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
# The random-init row's name and its display; `stages` is OUT's directory of the stages' runs, so
# neither may name a row or stage.
RANDOM_INIT = 'random_init'
RANDOM_INIT_DISPLAY = 'random init'
STAGES_DIR = 'stages'
RESERVED_NAMES = (RANDOM_INIT, STAGES_DIR)
# A row's or stage's name (a directory name), a `{stage:<name>}` placeholder, an `env` item.
NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.@+-]*\Z')
PLACEHOLDER = re.compile(r'\{stage:([^{}]*)\}')
ENV_ITEM = re.compile(r'[A-Za-z_][A-Za-z0-9_]*=\S*\Z')


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

  @property
  def row_names(self) -> list[str]:
    """Every row's name in table order, then `RANDOM_INIT` when the file adds it."""
    return [r.name for r in self.rows] + ([RANDOM_INIT] if self.random_init else [])


def _bad(path: str, what: str) -> errors.ConfigError:
  return errors.ConfigError(f'ablation file {path}: {what} (docs/ablations.md)')


def check_overrides(path: str, where: str, overrides: Any) -> tuple[str, ...]:
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
    overrides = check_overrides(path, where, stage.overrides)
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
    overrides = check_overrides(path, where, row.overrides)
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
  shared = check_overrides(path, 'shared', ablation.overrides)
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
