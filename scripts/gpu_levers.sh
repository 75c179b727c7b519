#!/usr/bin/env bash
# The GPU levers of the covid_ct step in one call (usecases/bench/levers.py: Keras on JAX,
# today's fit/predict beside steps_per_execution, the device-resident scan loop, jitted and
# bfloat16-weight inference, a profiler breakdown, and PRNG/XLA settings each in its own
# process) on an offline GPU machine. Writes OUT/levers.json after every setting.
#
#   bash scripts/prepare_device.sh                 # here, once: .whl and .devdata
#   bash scripts/gpu_levers.sh OUT [ARGS...]       # there (carry .whl and .devdata)
#   bash scripts/gpu_levers.sh /tmp/l --device cpu --dataset phantom --n-filters 2   # a CPU check
set -euo pipefail
. "$(dirname "$0")/device_env.sh" "${1:?usage: scripts/gpu_levers.sh OUT [ARGS...]}" # OUT PY DATA, cd
shift
exec "$PY" -m usecases.bench.levers --data-root "$DATA" --out "$OUT" "$@"
