#!/usr/bin/env bash
# The test command: the whole suite, unit and real-engine end-to-end tests, then a leak check.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pytest -q "$@"
./scripts/leakcheck.sh
