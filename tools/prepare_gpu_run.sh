#!/usr/bin/env bash
# Fill .gpu/ (ignored by git) with what benchmarks/gpu_check.sh needs on a GPU machine that cannot
# download: wheels of the dependencies its python 3.12 lacks, and the Tang and names corpora.
#   bash tools/prepare_gpu_run.sh [DATA_DIR]     # default ../shared/corpora
# Then, on the GPU machine: bash benchmarks/gpu_check.sh   (carrying .gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/corpora}"
mkdir -p .gpu/wheels .gpu/data/chinese-poetry
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --implementation cp \
    -d .gpu/wheels opencc pypinyin prompt_toolkit
rm -rf .gpu/data/chinese-poetry/quantangshi .gpu/data/names
cp -r "$data/chinese-poetry/quantangshi" .gpu/data/chinese-poetry/
cp -r "$data/names" .gpu/data/
du -sh .gpu
