#!/usr/bin/env bash
# CACL Table 1 ablation at CPU scale on synthetic_motion (configs/cacl.py:<row>.tiny).
#
#   bash scripts/cacl_table1.sh [OUT] [--table2] [--independent]   (default OUT=runs/cacl_table1)
#
#   1. build synthetic_motion/default into $DATA_DIR (skipped when already built);
#   2. the frames stage once: image MoCo of the resnet10 frame encoder (configs/frames.py:tiny);
#   3. every Table 1 row: `jaxvssl train` then `jaxvssl evaluate` (retrieval R@1/5/10/20/50,
#      linear probe, shuffle sensitivity); --table2 adds Table 2's two middle positive-pair sets;
#      --independent adds full CACL with the released code's 'independent' aggregation of the
#      positives (the paper's eq. 4 'sum' lets T collapse at this scale; docs/methods/cacl.md);
#   4. `jaxvssl compare` of all rows and the random-init backbone into OUT/comparison.md.
# Re-running resumes: finished trainings resume at their last step (a no-op), evaluations with a
# summary.json are skipped. Environment: DATA_DIR (default data/tfds), JAXVSSL (the command).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="runs/cacl_table1"
TABLE2=0
INDEPENDENT=0
for arg in "$@"; do
  case "$arg" in
    --table2) TABLE2=1 ;;
    --independent) INDEPENDENT=1 ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) OUT="$arg" ;;
  esac
done
DATA_DIR="$(realpath -m "${DATA_DIR:-data/tfds}")"
JAXVSSL="${JAXVSSL:-.venv/bin/jaxvssl}"
OUT="$(realpath -m "$OUT")"
FRAMES="$OUT/frames"
export TF_CPP_MIN_LOG_LEVEL=2

ROWS=(sdp sdp_star vmoco sdp_vmoco vmoco_t sdp_vmoco_t)
NAMES=("SDP" "SDP*" "V-MoCo" "SDP+V-MoCo" "V-MoCo+T" "SDP+V-MoCo+T")
declare -A ROW_OVERRIDES=()
if [ "$INDEPENDENT" = 1 ]; then
  # Run directory <row>@independent: configs/cacl.py:<row>.tiny plus the override below.
  ROWS+=(sdp_vmoco_t@independent)
  NAMES+=("SDP+V-MoCo+T (independent)")
  ROW_OVERRIDES[sdp_vmoco_t@independent]="--config.cacl.positive_aggregation=independent"
fi
if [ "$TABLE2" = 1 ]; then
  ROWS+=(pairs_gg_gtq pairs_gg_gtq_gtk)
  NAMES+=("pairs Gq.Gk+Gq.Tq" "pairs Gq.Gk+Gq.Tq+Gq.Tk")  # --names is comma-separated
fi
DATA_OVERRIDES=(--config.data.name=synthetic_motion/default "--config.data.data_dir=$DATA_DIR")

stage() { echo; echo "=== [$(date +%H:%M:%S)] $*"; }

stage "data: synthetic_motion/default in $DATA_DIR"
"$JAXVSSL" build-data --data_dir "$DATA_DIR" --variant default

stage "frames stage: image MoCo of the frame encoder -> $FRAMES"
"$JAXVSSL" train --config=configs/frames.py:tiny --workdir="$FRAMES" "${DATA_OVERRIDES[@]}"

EVALS=()
for row in "${ROWS[@]}"; do
  stage "train $row -> $OUT/$row"
  # shellcheck disable=SC2086  # the overrides are whitespace-free words
  "$JAXVSSL" train --config="configs/cacl.py:${row%@*}.tiny" --workdir="$OUT/$row" \
    "${DATA_OVERRIDES[@]}" "--config.cacl.frame_encoder_workdir=$FRAMES" ${ROW_OVERRIDES[$row]:-}
  if [ ! -f "$OUT/eval/$row/summary.json" ]; then
    stage "evaluate $row"
    "$JAXVSSL" evaluate --workdir="$OUT/$row" --out="$OUT/eval/$row"
  fi
  EVALS+=("$OUT/eval/$row")
done

if [ ! -f "$OUT/eval/random_init/summary.json" ]; then
  stage "evaluate the same backbone at random initialisation"
  "$JAXVSSL" evaluate --workdir="$OUT/${ROWS[0]}" --random_init --out="$OUT/eval/random_init"
fi

stage "compare -> $OUT/comparison.md"
names="random init"
for n in "${NAMES[@]}"; do names="$names,$n"; done
"$JAXVSSL" compare "$OUT/eval/random_init" "${EVALS[@]}" --out="$OUT" --names="$names"
