#!/usr/bin/env bash
# The image's entry point: say whether a GPU is visible, then run run.py with the arguments
# (Hydra overrides), or JupyterLab on the notebooks with `jupyter`. With a GPU and no backend=
# override, Keras runs on JAX (backend=jax: the image's TensorFlow is the CPU build); the
# record's config says so.
set -euo pipefail
home=${USECASE_BENCH_HOME:-/opt/usecase-bench}
if gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null) && [ -n "$gpu" ]; then
  echo "usecase-bench: NVIDIA GPU detected: ${gpu//$'\n'/, }" >&2
  has_gpu=1
else
  echo "usecase-bench: no NVIDIA GPU visible (docker run --gpus all to use one); CPU only" >&2
  has_gpu=0
fi
if [ "${1:-}" = "jupyter" ]; then
  shift
  exec jupyter lab --no-browser --ip=0.0.0.0 --port=8888 --notebook-dir="$home/notebooks" "$@"
fi
args=("$@")
if [ "$has_gpu" = 1 ] && ! printf '%s\n' "${args[@]}" | grep -q '^backend='; then
  echo "usecase-bench: Keras on JAX for the GPU (backend=jax; pass backend=tensorflow for CPU TensorFlow)" >&2
  args=("backend=jax" "${args[@]}")
fi
exec python "$home/run.py" "${args[@]}"
