#!/usr/bin/env bash
# Precision seed study in one call: float32 and mixed_bfloat16 training over several seeds
# (one Hydra multirun), then usecase-bench-seed-study over the records.
#
#   bash scripts/seed_study.sh OUT [OVERRIDES...]
#
# Defaults are the GPU study: Galaxy settings (n=64, 10 epochs) on the real slices, Keras on
# JAX, seeds 1-4, ONNX export off (no TensorFlow there). Any default can be overridden, e.g.
# on this repository's CPU:  bash scripts/seed_study.sh /tmp/study backend=tensorflow
#   device=cpu scale=ci dataset.root=../shared/data/covid_semiseg
# Writes OUT/study.txt, OUT/seed_study.json and OUT/records.tar.gz (each run without its .npz); the
# runs themselves go to $STUDY_RUNS (default /tmp/seed-study-runs). On a lent GPU machine
# carry .whl and .devdata (scripts/prepare_device.sh; scripts/device_env.sh installs and
# unpacks them). JAX's persistent compilation cache lets every run after the first of each
# precision skip XLA compilation.
set -euo pipefail
. "$(dirname "$0")/device_env.sh" "${1:?usage: scripts/seed_study.sh OUT [OVERRIDES...]}" # OUT PY DATA, cd
shift
runs=${STUDY_RUNS:-/tmp/seed-study-runs}

overrides=("$@")
given dataset || given dataset.root || overrides+=("dataset.root=$DATA")
for d in backend=jax device=gpu scale=galaxy seed=1,2,3,4 \
  usecase.precision=float32,mixed_bfloat16 usecase.export.onnx=false \
  usecase.save_weights=false report=false "cache_dir=/tmp/usecase-bench-cache"; do
  given "${d%%=*}" || overrides+=("$d")
done

given note || overrides+=('note="precision seed study (scripts/seed_study.sh); with the JAX backend a persistent compilation cache is on, so first_step_s of later runs holds no compilation"')

rm -rf "$runs"
rc=0
"$PY" run.py -m "results_dir=$runs" "${overrides[@]}" || rc=$?
[ -d "$runs/covid_ct" ] || { echo "error: no run wrote a record under $runs" >&2; exit 1; }
tar czf "$OUT/records.tar.gz" --exclude='*.npz' -C "$runs" covid_ct # records, configs, logs
"$PY" -m usecases.studies.seed_study "$runs/covid_ct" --json "$OUT/seed_study.json" \
  >"$OUT/study.txt" || rc=$?
cat "$OUT/study.txt"
exit "$rc"
