#!/usr/bin/env bash
# Prepare what a lent GPU machine lacks for covid_ct on Keras-on-JAX: it has Python 3.12 with
# jax, numpy, scipy, scikit-image, h5py and onnxruntime but no TensorFlow and no internet.
# Writes .whl/ (the pinned wheels of requirements.lock that are missing there) and
# .devdata/covid_semiseg.tar (../shared/data/covid_semiseg as one file, 45 MB: its JPEG slices
# are already compressed, and its prepared arrays would be twice that); both are git-ignored
# and travel with `carry: [".whl", ".devdata"]`. .devdata also gets this commit and the
# checksums of the tracked files (snapshot_commit.sh): run this script again after a commit.
# scripts/device_env.sh, which the one-call scripts (seed_study.sh, gpu_measure.sh) source,
# installs the wheels and unpacks the data.
set -euo pipefail
cd "$(dirname "$0")/.."
names='hydra-core|jsonschema|jsonschema-specifications|keras|namex|omegaconf|optree'
names+='|platformdirs|pooch|referencing|rpds-py'
mapfile -t pins < <(grep -E "^($names)==" requirements.lock)
if [ "${#pins[@]}" -ne 11 ]; then
  echo "error: requirements.lock pins ${#pins[@]} of the 11 packages ($names)" >&2
  exit 1
fi
rm -rf .whl # one version of each: two stop pip install .whl/*.whl
# antlr4-python3-runtime (for omegaconf) is published as source only: build its pure-Python wheel
python3 -m pip wheel -q --no-deps -w .whl "$(grep -E '^antlr4-python3-runtime==' requirements.lock)"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
data=../shared/data/covid_semiseg
if [ ! -d "$data/Dataset" ]; then
  echo "error: $data not found; put the COVID-SemiSeg copy there (see data_manifests/covid_semiseg.yaml)" >&2
  exit 1
fi
rm -rf .devdata && mkdir -p .devdata
tar cf .devdata/covid_semiseg.tar --sort=name -C "$(dirname "$data")" covid_semiseg
bash scripts/snapshot_commit.sh .devdata # the records name this commit (device_env.sh)
size=$(du -cm .whl .devdata | tail -1 | cut -f1)
echo "ready: .whl ($(ls .whl | wc -l) wheels) and .devdata/covid_semiseg.tar; carry both (${size} MiB of the 64)"
