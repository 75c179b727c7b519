#!/usr/bin/env bash
# Nightly benchmark: run both use cases, write the report, and end with the regression gate's
# verdict against a baseline (exit 0 pass, 1 regression or failed step, 2 unusable inputs).
# The GPU workflow (.github/workflows/nightly-gpu.yml) and CI's CPU smoke test run this file.
#
#   bash scripts/nightly.sh --device gpu --scale galaxy                 # the nightly GPU job
#   bash scripts/nightly.sh --device cpu --scale smoke --out /tmp/n     # CI, any laptop (~2 min)
#   bash scripts/nightly.sh --device cpu --scale smoke --write-baseline # refresh the baseline
#
# Options:
#   --device cpu|gpu          device for every run (default gpu)
#   --scale smoke|ci|galaxy   smoke: covid_ct on the synthetic phantom; else the real slices
#   --backend tensorflow|jax  Keras backend of covid_ct (default tensorflow)
#   --baseline DIR            baseline records (default results/baselines/<device>-<scale>)
#   --out DIR                 output folder, must not hold runs yet
#                             (default results/nightly/<UTC time>); writes runs/, report/,
#                             gate.txt, gate.md, gate.json, summary.txt
#   --covid-root DIR          local COVID-SemiSeg copy for scale ci/galaxy
#                             (default ../shared/data/covid_semiseg when present, else fetched)
#   --write-baseline          copy this run's records into --baseline instead of gating
# Environment: PYTHON (default .venv/bin/python, made by scripts/bootstrap.sh first where a fresh
# checkout has none); NIGHTLY_COLABFOLD_ARGS (Hydra overrides of
# the colabfold_spike run, default "weights=random msa_mode=single_sequence": offline, no 3.5 GB
# of weights) and, at smoke scale, NIGHTLY_COLABFOLD_SMOKE_ARGS (default
# "usecase.max_length=30 usecase.num_models=1 usecase.num_recycles=0").
set -uo pipefail
cd "$(dirname "$0")/.."

device=gpu scale=galaxy backend=tensorflow baseline="" out="" covid_root="" write_baseline=0
die() { echo "error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=${2:?}; shift 2 ;;
    --scale) scale=${2:?}; shift 2 ;;
    --backend) backend=${2:?}; shift 2 ;;
    --baseline) baseline=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --covid-root) covid_root=${2:?}; shift 2 ;;
    --write-baseline) write_baseline=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$device" in cpu|gpu) ;; *) die "--device must be cpu or gpu, not $device" ;; esac
case "$scale" in smoke|ci|galaxy) ;; *) die "--scale must be smoke, ci or galaxy, not $scale" ;; esac
baseline=${baseline:-results/baselines/$device-$scale}
out=${out:-results/nightly/$(date -u +%Y%m%d-%H%M%S)}
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ]; then
  echo "nightly: no .venv in this checkout: bash scripts/bootstrap.sh" >&2
  bash scripts/bootstrap.sh >&2 || die "scripts/bootstrap.sh failed; see its output above"
fi
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || die "no Python at $PYTHON; run scripts/bootstrap.sh or set PYTHON"
runs="$out/runs"
if [ -d "$runs" ] && [ -n "$(ls -A "$runs" 2>/dev/null)" ]; then
  die "$runs already holds runs; choose an empty --out folder"
fi
mkdir -p "$runs" || die "cannot create $runs"
summary="$out/summary.txt"
: > "$summary"
say() { echo "nightly: $*" | tee -a "$summary"; }
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3} PYTHONUNBUFFERED=1
say "device=$device scale=$scale backend=$backend baseline=$baseline out=$out ($(date -u +%FT%TZ))"
failed=0
skipped=()

run_case() {  # name, then Hydra overrides
  local name=$1; shift
  local started=$SECONDS
  "$PYTHON" run.py "usecase=$name" "device=$device" "results_dir=$runs" "run_id=nightly-$name" "$@" \
    > "$out/$name.log" 2>&1
  local rc=$?
  say "$name: exit $rc in $((SECONDS - started)) s (log $out/$name.log)"
  if [ $rc -ne 0 ]; then
    failed=1
    grep '^error:' "$out/$name.log" | head -3 | sed 's/^/nightly:   /' | tee -a "$summary"
  fi
}

# covid_ct: the synthetic phantom at smoke scale (no data needed), else the real slices.
if [ "$scale" = smoke ]; then
  run_case covid_ct dataset=phantom "scale=$scale" "backend=$backend"
else
  if [ -z "$covid_root" ] && [ -d ../shared/data/covid_semiseg/Dataset ]; then
    covid_root=$(cd ../shared/data/covid_semiseg && pwd)
  fi
  root_arg=()
  [ -n "$covid_root" ] && root_arg=("dataset.root=$covid_root")
  run_case covid_ct dataset=covid_semiseg "${root_arg[@]}" "scale=$scale" "backend=$backend"
fi

# colabfold_spike: only where ColabFold is installed (a distribution that does not import is a
# broken install: a failed step, never "not installed").
"$PYTHON" - <<'PY' 2>"$out/colabfold_import.log"
import importlib.metadata as m, sys
try:
    m.version("colabfold")
except m.PackageNotFoundError:
    sys.exit(3)
import colabfold.batch  # noqa: F401  (what the use case imports)
import usecases.colabfold_spike.usecase  # noqa: F401
PY
cf_import=$?
if [ $cf_import -ne 0 ] && [ $cf_import -ne 3 ]; then
  failed=1
  say "colabfold_spike: FAILED: ColabFold is installed but does not import: $(tail -1 "$out/colabfold_import.log")"
elif [ $cf_import -eq 0 ]; then
  read -r -a cf_args <<< "${NIGHTLY_COLABFOLD_ARGS:-weights=random msa_mode=single_sequence}"
  if [ "$scale" = smoke ]; then
    read -r -a cf_smoke <<< "${NIGHTLY_COLABFOLD_SMOKE_ARGS:-usecase.max_length=30 usecase.num_models=1 usecase.num_recycles=0}"
    cf_args+=("${cf_smoke[@]}")
  fi
  run_case colabfold_spike "scale=$scale" "${cf_args[@]}"
else
  say "colabfold_spike: skipped: not installed (no colabfold distribution; the colabfold extra)"
  skipped+=(colabfold_spike)
fi

# Report (never blocks the gate; a failure is reported and fails the job).
if "$PYTHON" -m usecases.reporting.render "$runs" --out "$out/report" > "$out/report.log" 2>&1; then
  say "report: $out/report/report.html"
else
  failed=1
  say "report: FAILED ($(grep '^error:' "$out/report.log" | head -1))"
fi

if [ $write_baseline -eq 1 ]; then
  mkdir -p "$baseline"
  n=0
  while IFS= read -r rec; do
    if ! "$PYTHON" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["status"] != "ok")' "$rec"; then
      say "baseline: not keeping $rec (the run failed)"
      failed=1
      continue
    fi
    key=$(basename "$(dirname "$(dirname "$rec")")")
    mkdir -p "$baseline/$key"
    cp "$rec" "$baseline/$key/record.json"
    n=$((n + 1))
  done < <(find "$runs" -name record.json | sort)
  say "baseline: wrote $n record(s) to $baseline"
  exit $failed
fi

ignore=()
for name in "${skipped[@]}"; do ignore+=(--ignore-usecase "$name"); done
"$PYTHON" -m usecases.gate --baseline "$baseline" --current "$runs" "${ignore[@]}" \
  --markdown "$out/gate.md" --json "$out/gate.json" 2>&1 | tee "$out/gate.txt"
gate=${PIPESTATUS[0]}
if [ "$gate" -eq 0 ] && [ $failed -ne 0 ]; then
  say "verdict: FAIL (gate passed, but a step above failed)"
  exit 1
fi
say "verdict: gate exit $gate ($(tail -1 "$out/gate.txt"))"
exit "$gate"
