#!/usr/bin/env bash
# README command 1: set up, then build synthetic_motion -> pretrain tiny MoCo -> evaluate the
# pretrained and the random-init backbone -> print the comparison table and save plots.
#   bash scripts/demo.sh [WORKDIR]      (default runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/jaxvssl demo --workdir "${1:-runs/demo}"
