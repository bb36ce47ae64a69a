#!/usr/bin/env bash
# CACL Table 1 at CPU scale on synthetic_motion, seeds 0, 1, 2: a thin call of
#
#   jaxvssl ablate configs/ablations/cacl_table1.py [--jobs N] [--seeds 0,1,2] [--out DIR] ...
#
# (builds synthetic_motion/default if needed, trains the frames stage and every row per seed,
# evaluates, writes OUT/results.md; default OUT=runs/ablations/cacl_table1; re-running resumes).
# Every argument goes to `jaxvssl ablate` (docs/ablations.md). Table 2's rows:
# configs/ablations/cacl_table2.py. Environment: JAXVSSL (the command, default .venv/bin/jaxvssl).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${JAXVSSL:-.venv/bin/jaxvssl}" ablate configs/ablations/cacl_table1.py "$@"
