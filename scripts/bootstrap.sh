#!/usr/bin/env bash
# Create .venv from exact pins and install this project into it. The default lock,
# requirements-colabfold.lock, holds both use cases (covid_ct + the colabfold extra);
# LOCK=requirements.lock gives covid_ct alone (ColabFold caps absl-py below 2).
# Every pin in the lock carries its sha256 hashes (uv pip compile --generate-hashes) and the
# install requires them (--require-hashes: a changed or unhashed download stops it); the project
# itself, which has no hash, goes in afterwards with --no-deps. uv is pinned to one release.
# Re-running is cheap: nothing is reinstalled while the lock is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOCK=${LOCK:-requirements-colabfold.lock}
UV_VERSION=0.13.9
stamp=.venv/.lock-sha256
want=$(sha256sum "$LOCK" pyproject.toml scripts/lock-overrides.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
.venv/bin/python -m uv pip install -q --python .venv/bin/python --require-hashes --override scripts/lock-overrides.txt -r "$LOCK"
.venv/bin/python -m uv pip install -q --python .venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
