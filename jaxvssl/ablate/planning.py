"""From an ablation to its tasks: every stage, (row, seed) pair and random init of every seed as
`jaxvssl train` / `evaluate` commands, and the checks made before anything runs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

from jaxvssl import config as config_lib
from jaxvssl import errors
from jaxvssl.ablate import definition
from jaxvssl.ablate.tasks import Outcome, Phase, Task


def _jaxvssl(python: str, *args: str, env: Sequence[str] = ()) -> tuple[str, ...]:
  prefix = ('env', *env) if env else ()
  return (*prefix, python, '-m', 'jaxvssl', *args)


def _substitute(item: str, stage_dirs: Mapping[str, str]) -> str:
  return definition.PLACEHOLDER.sub(lambda m: stage_dirs[m.group(1)], item)


def stage_dir(stages: str, stage: str, seed: int) -> str:
  """A stage's run directory under `stages` (`--stages`, default `OUT/stages`)."""
  return os.path.join(stages, stage, f'seed{seed}')


def pair_dir(out: str, row: str, seed: int) -> str:
  return os.path.join(out, row, f'seed{seed}')


def stage_overrides(
  ablation: definition.Ablation, stage: definition.Stage, seed: int, data_dir: str | None
) -> tuple[str, ...]:
  """Shared, then the stage's overrides, then `--data_dir`, then the seed."""
  data = (f'data.data_dir={data_dir}',) if data_dir else ()
  return (*ablation.overrides, *stage.overrides, *data, f'seed={seed}')


def row_items(
  ablation: definition.Ablation,
  row: definition.Row,
  extra: Sequence[str] = (),
  data_dir: str | None = None,
) -> tuple[str, ...]:
  """A row's overrides as written: shared, the row's, `--data_dir`, then the command line's."""
  data = (f'data.data_dir={data_dir}',) if data_dir else ()
  return (*ablation.overrides, *row.overrides, *data, *extra)


def row_overrides(
  ablation: definition.Ablation,
  row: definition.Row,
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
  ablation: definition.Ablation,
  out: str,
  seeds: Sequence[int],
  rows: Sequence[definition.Row],
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
  stages = os.path.abspath(stages) if stages else os.path.join(out, definition.STAGES_DIR)
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
      used = {name for item in items for name in definition.PLACEHOLDER.findall(item)}
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
      workdir = pair_dir(out, definition.RANDOM_INIT, seed)
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
          definition.RANDOM_INIT,
          definition.RANDOM_INIT,
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
  ablation: definition.Ablation, path: str, tasks: Sequence[Task]
) -> dict[tuple[str, str, int], config_lib.ConfigDict]:
  """Loads every stage's and row's config of every seed with its overrides (by task key), naming
  the task on a ConfigError: a typo fails before hours of training, not in the middle."""
  configs = {}
  for task in tasks:
    if task.kind == definition.RANDOM_INIT:
      continue
    try:
      configs[task.key] = config_lib.load_config(task.config, task.overrides)
    except errors.ConfigError as e:
      kind = 'stage' if task.kind == 'stage' else 'row'
      raise errors.ConfigError(f'ablation file {path}: {kind} {task.name!r}: {e}') from None
  return configs


def check_random_init_sources(
  ablation: definition.Ablation,
  tasks: Sequence[Task],
  outcomes: Mapping[tuple[str, str, int], Outcome],
  path: str,
) -> None:
  """Random init of a seed whose first row `--rows` leaves out, never ran and is not restored from
  `--record` has no config to evaluate and can never run. Says so before anything runs, instead
  of failing that pair after the others."""
  first = ablation.rows[0].name
  for task in tasks:
    if task.kind != definition.RANDOM_INIT or task.after or task.key in outcomes:
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
