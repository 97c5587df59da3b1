#!/usr/bin/env bash
# Set up everything, lint, run the whole test suite, then every benchmark once in its --smoke
# mode (a benchmark that no longer runs fails the build). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
.venv/bin/python scripts/bench_smoke.py
