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

The package, one idea a module, in the order a run goes through them: `definition` (the file's
`Ablation`, `Row`, `Stage`), `tasks` (`Task`, `Phase`, `Outcome`), `planning` (ablation ->
tasks, the up-front checks), `running` (subprocesses, signals), `aggregate` (mean ± std,
diagnostics, differences), `report` (results.md), `provenance` (commit, machine), `records`
(`--record`), `command` (`run_ablation`, the command line).
"""

from __future__ import annotations

from jaxvssl.ablate.command import EXIT_FAILED, ablate_main, run_ablation
from jaxvssl.ablate.definition import Ablation, Row, Stage, load_ablation

__all__ = [
  'EXIT_FAILED',
  'Ablation',
  'Row',
  'Stage',
  'ablate_main',
  'load_ablation',
  'run_ablation',
]
