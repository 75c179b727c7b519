# Sourced by the one-call device scripts (seed_study.sh, reproduction_gpu.sh, gpu_measure.sh):
# the Python to use, the carried wheels installed where the machine lacks them, the carried
# data unpacked, JAX's persistent compilation cache, and given KEY (is KEY among the caller's
# overrides?). Sets OUT, PY and DATA (the covid_semiseg folder to read);
# where the copy has no git history, exports the commit that scripts/snapshot_commit.sh wrote
# (USECASE_BENCH_GIT_COMMIT, USECASE_BENCH_GIT_DIRTY=1 when the copy differs) for the records.
#
# Carried (scripts/prepare_device.sh makes both here): .whl/*.whl (pinned packages a GPU image
# without TensorFlow lacks) and .devdata/covid_semiseg.tar (the real slices, one 45 MB file).
# Without them: the repository's .venv and ../shared/data/covid_semiseg.
#
#   . "$(dirname "$0")/device_env.sh" "$1"   # OUT: created, made absolute (as OUT), then cd
#                                              # to the repository root
OUT=${1:?usage: OUT is the first argument (a folder for the results)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # relative to the caller, before the cd
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
if [ -d .whl ] && ! "$PY" -c "import hydra" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ('hydra', 'keras', 'pooch', 'jsonschema', 'scipy')))" || {
  echo "error: $PY lacks hydra/keras/pooch/jsonschema/scipy; run bash scripts/prepare_device.sh here and carry .whl" >&2
  exit 2
}
DATA=../shared/data/covid_semiseg
tarball=${DEVICE_DATA_TAR:-.devdata/covid_semiseg.tar}
if [ -f "$tarball" ]; then
  DATA=${DEVICE_DATA_DIR:-/tmp/usecase-bench-data}/covid_semiseg
  if [ ! -d "$DATA/Dataset" ]; then # unpacked beside, then renamed: never a partial copy
    mkdir -p "$(dirname "$DATA")"
    part=$(mktemp -d "$DATA.part.XXXXXX")
    if tar xf "$tarball" -C "$part" 2>/dev/null && [ -d "$part/covid_semiseg/Dataset" ]; then
      rm -rf "$DATA" && mv "$part/covid_semiseg" "$DATA" && rm -rf "$part"
    else
      rm -rf "$part"
      echo "error: $tarball did not unpack to covid_semiseg/Dataset; run bash scripts/prepare_device.sh again" >&2
      exit 2
    fi
  fi
fi
snapshot=${DEVICE_SNAPSHOT_DIR:-.devdata} # scripts/snapshot_commit.sh (prepare_device.sh)
if [ -f "$snapshot/commit" ] && ! git rev-parse -q --verify HEAD >/dev/null 2>&1; then
  read -r commit dirty <"$snapshot/commit"
  sha256sum --quiet --strict -c "$snapshot/tree.sha256" >/dev/null 2>&1 || dirty=1
  export USECASE_BENCH_GIT_COMMIT=$commit USECASE_BENCH_GIT_DIRTY=$dirty
fi
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3

given() { # is KEY (or a group KEY) among the caller's "${overrides[@]}", with or without +/++/~?
  local a
  for a in "${overrides[@]}"; do
    a=${a#\~}; a=${a#++}; a=${a#+}
    [[ $a == "$1="* || $a == "$1" ]] && return 0
  done
  return 1
}
