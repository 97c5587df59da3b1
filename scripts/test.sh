#!/usr/bin/env bash
# Set up everything, lint, run the whole test suite, then every benchmark once in its --smoke
# mode (a benchmark that no longer runs fails the build). Extra arguments go to pytest.
# Throwaway PostgreSQL and Redis servers (scripts/services.sh) run for the tests when this
# machine can start them; with GEMPIX_REQUIRE_SERVICES=1 (CI) they must, and the tests that
# need them fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
source scripts/services.sh
if [ "${GEMPIX_REQUIRE_SERVICES:-0}" = 1 ] || services_available; then
  trap services_stop EXIT
  services_start
fi
.venv/bin/python -m pytest "$@"
.venv/bin/python scripts/bench_smoke.py
