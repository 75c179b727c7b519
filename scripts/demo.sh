#!/usr/bin/env bash
# Install, then run covid_ct end to end on the embedded synthetic phantom (offline, CPU).
# The record is marked "synthetic" and gets no verdict against published values.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python run.py usecase=covid_ct dataset=phantom scale=smoke device=cpu "$@"
