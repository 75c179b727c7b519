#!/usr/bin/env bash
# Create .venv from requirements.lock (exact pins) and install this project into it.
# Re-running is cheap: nothing is reinstalled while requirements.lock is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.lock-sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check uv
.venv/bin/python -m uv pip install -q --python .venv/bin/python -r requirements.lock
.venv/bin/python -m uv pip install -q --python .venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
