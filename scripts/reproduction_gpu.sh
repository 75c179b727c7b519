#!/usr/bin/env bash
# The reproduction studies on a lent GPU in one call: galaxy scale (n=64, 10 epochs) seeds 1-5,
# then paper scale (n=64, 100 epochs) seeds 1-3, Keras on JAX, on the real slices.
#
#   bash scripts/reproduction_gpu.sh OUT [OVERRIDES...]
#
# Each study is one usecase-bench-study call into OUT/<scale>/: every run's record is written
# to OUT/<scale>/runs/covid_ct/seed<N>/ as soon as that run finishes, so a call cut at its time
# limit still returns the finished seeds (rerun the same command to finish them: ok seeds are
# kept), then OUT/<scale>/study.json, study.txt and report.html. REPRO_STUDIES overrides the
# plan ("scale:seeds ..."; e.g. REPRO_STUDIES="ci:42,1" with device=cpu backend=tensorflow for
# the CPU test of this script). ONNX export is off by default: the GPU image has no TensorFlow.
# On the device carry .whl and .devdata (scripts/prepare_device.sh).
set -euo pipefail
. "$(dirname "$0")/device_env.sh" "${1:?usage: scripts/reproduction_gpu.sh OUT [OVERRIDES...]}"
shift

overrides=("$@")
if given scale; then
  echo "error: the plan sets scale per study; choose them with REPRO_STUDIES=\"galaxy:1-5 paper:1-3\"" >&2
  exit 2
fi
given dataset || given dataset.root || overrides+=("dataset.root=$DATA")
for d in backend=jax device=gpu usecase.export.onnx=false usecase.save_weights=false \
  "cache_dir=/tmp/usecase-bench-cache"; do
  given "${d%%=*}" || overrides+=("$d")
done

rc=0
for plan in ${REPRO_STUDIES:-galaxy:1-5 paper:1-3}; do
  scale=${plan%%:*} seeds=${plan#*:}
  echo "== $scale, seeds $seeds"
  "$PY" -m usecases.runner.study "$OUT/$scale" --seeds "$seeds" "scale=$scale" "${overrides[@]}" ||
    rc=$?
done
exit "$rc"
