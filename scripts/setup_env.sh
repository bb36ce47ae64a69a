#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs jaxvssl with its test extras into it.
# Used by both README commands; safe to re-run (pip skips what is already installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
