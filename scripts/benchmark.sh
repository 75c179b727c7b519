#!/usr/bin/env bash
# Time the covid_ct hot paths (tests/benchmarks) with pytest-benchmark: TensorFlow paths, then
# JAX paths (Keras fixes its backend per process). Prints images/s, GFLOP/s, efficiency against
# this machine's GEMM ceilings and each path's speed-up over the reference way.
#
#   bash scripts/benchmark.sh --widths smoke,paper --json results/benchmarks/mybox
#       -> results/benchmarks/mybox-tensorflow.json and mybox-jax.json
#   bash scripts/benchmark.sh --widths paper --compare results/benchmarks/mybox --max-slowdown 25
#       -> exit 1 when any path's median is more than 25 % slower than in the saved run
#
# Options: --widths LIST (smoke,ci,paper; default paper)  --seconds S (timed seconds per path,
# default 20)  --backends LIST (tensorflow,jax; with --compare and no --backends: the backends
# the saved run has)  --json PREFIX  --compare PREFIX  --max-slowdown PERCENT (a whole number,
# default 25)  and anything after -- goes to pytest (e.g. -k train; its paths, e.g.
# --weights paper=FILE, are relative to the repository root). Every option is checked before
# anything runs.
set -euo pipefail

widths=paper seconds=20 backends="" json="" compare="" slowdown=25 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --widths) widths=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --backends) backends=${2:?}; shift 2 ;;
    --json) json=${2:?}; shift 2 ;;
    --compare) compare=${2:?}; shift 2 ;;
    --max-slowdown) slowdown=${2:?}; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "error: unknown option $1 (see the header of scripts/benchmark.sh)" >&2; exit 2 ;;
  esac
done
fail() { echo "error: $*" >&2; exit 2; }
[[ $slowdown =~ ^[0-9]+$ ]] || fail "--max-slowdown $slowdown: give a whole percentage, e.g. 25"
[[ $seconds =~ ^[0-9]*\.?[0-9]+$ ]] && [[ ! $seconds =~ ^[0.]+$ ]] ||
  fail "--seconds $seconds: give a positive number of seconds, e.g. 20"
for width in ${widths//,/ }; do
  case $width in smoke | ci | paper) ;; *) fail "--widths: unknown width $width (smoke, ci, paper)" ;; esac
done
[ -n "${widths//,/}" ] || fail "--widths is empty; e.g. --widths paper"
# --json / --compare / --weights paths are taken from where the script was called
[ -n "$json" ] && json=$(realpath -m "$json")
[ -n "$compare" ] && compare=$(realpath -m "$compare")
if [ -z "$backends" ] && [ -n "$compare" ]; then
  for backend in tensorflow jax; do
    [ -f "$compare-$backend.json" ] && backends+=${backends:+,}$backend
  done
  [ -n "$backends" ] || fail "no saved run $compare-tensorflow.json or $compare-jax.json; make one with --json $compare"
fi
backends=${backends:-tensorflow,jax}
[ -n "${backends//,/}" ] || fail "--backends is empty; e.g. --backends tensorflow"
for backend in ${backends//,/ }; do
  case $backend in tensorflow | jax) ;; *) fail "--backends: unknown backend $backend (tensorflow, jax)" ;; esac
  [ -z "$compare" ] || [ -f "$compare-$backend.json" ] ||
    fail "no saved run $compare-$backend.json; make one with --json $compare --backends $backend"
done
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3

status=0
for backend in ${backends//,/ }; do
  args=(-m pytest tests/benchmarks -p no:cacheprovider --benchmark-enable
        --widths "$widths" --bench-seconds "$seconds" --benchmark-columns=median,iqr,min,rounds
        --benchmark-sort=name -q -rs)
  [ -n "$json" ] && mkdir -p "$(dirname "$json")" && args+=(--benchmark-json "$json-$backend.json")
  [ -n "$compare" ] && args+=(--benchmark-compare "$compare-$backend.json"
                              --benchmark-compare-fail "median:${slowdown}%")
  echo "== $backend ($(date -u +%FT%TZ))"
  KERAS_BACKEND=$backend "$python" "${args[@]}" "${extra[@]}" || status=$?
done
exit $status
