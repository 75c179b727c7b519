#!/usr/bin/env bash
# Install, lint, and run the whole test suite (real-data tests use ../shared/data when present).
# Two pytest-xdist workers by default (TEST_WORKERS=N to change, 0 for one process); a test file
# stays on one worker (--dist loadfile), so its module fixtures are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
