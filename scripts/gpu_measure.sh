#!/usr/bin/env bash
# The GPU measurements of the covid_ct hot paths in one call (usecases/bench/gpu.py: Keras on
# JAX, paper width, training steps and epochs of the real slices in float32 and bf16, inference,
# GEMM ceilings per precision; optionally a ColabFold fold) on an offline GPU machine.
#
#   bash scripts/prepare_device.sh                 # here, once: .whl and .devdata
#   bash scripts/gpu_measure.sh OUT [ARGS...]      # there (carry .whl and .devdata)
#   bash scripts/gpu_measure.sh /tmp/m --device cpu --n-filters 4 --epochs 2   # a CPU check
#
# ARGS go to usecases.bench.gpu (e.g. --colabfold-lengths 302); --data-root defaults to the
# carried slices (scripts/device_env.sh). Writes OUT/record.json and prints the table.
set -euo pipefail
. "$(dirname "$0")/device_env.sh" "${1:?usage: scripts/gpu_measure.sh OUT [ARGS...]}" # OUT PY DATA, cd
shift
# the caller's own --data-root, given later, wins (argparse keeps the last)
exec "$PY" -m usecases.bench.gpu --data-root "$DATA" --out "$OUT" "$@"
