#!/usr/bin/env bash
# README command 2: set up and run the tests (the CI subset: everything not marked slow).
#   bash scripts/test.sh            # CI subset
#   bash scripts/test.sh -m slow    # only the slow end-to-end tests
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2
if [ "$#" -eq 0 ]; then
  set -- -m 'not slow'
fi
# pytest exits 5 when it collected no test: that is a failure here too (set -e).
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
