#!/usr/bin/env bash
# Install, lint, and run the whole test suite (real-data tests use ../shared/data when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
