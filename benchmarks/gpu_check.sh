#!/usr/bin/env bash
# One GPU check in under 10 minutes on one H100: the CUDA tests, the scale benchmark at
# 1M cells and the benchmark against intercode, on the GPU. Not yet run (benchmarks/README.md,
# "GPU"): run it on a CUDA machine and record the figures there, with the card.
#
#   bash benchmarks/gpu_check.sh            # writes benchmarks/out/gpu/
#
# Needs the repository's venv with a CUDA build of torch 2.13.0 (PyPI's Linux wheel is one;
# the developers' machines have the CPU build) and ~10 GB of disk for the 1M-cell atlas.
# Each step has its own time limit, so the whole check stops within 10 minutes; a step
# that runs out or fails is named and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a limit, keep the output, note a failure
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc$([ "$rc" -eq 124 ] && echo ', time limit'))")
}

if ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    echo "gpu_check: torch sees no CUDA device; use a CUDA build of torch on a GPU machine" >&2
    exit 1
fi
"$PY" -c 'import torch; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {torch.cuda.get_device_name(0)}")' \
    | tee "$OUT/card.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/card.txt"
lscpu | grep -E '^(Model name|CPU\(s\)):' | tee -a "$OUT/card.txt"

# 1. the CUDA tests (skipped on machines without CUDA): training on the GPU and loading on
#    the CPU, pinned-buffer batches, a CUDA device option accepted
step cuda_tests 120 "$PY" -m pytest -q -p no:cacheprovider -k "cuda" tests/model tests/pipeline

# 2. one epoch of 1M cells x 2,000 genes x 300 sets streamed from a backed .h5ad (the atlas
#    is written first, ~3 minutes), the paper's model at batch 1024; target: <= 10 s
step scale_1m 330 "$PY" benchmarks/bench_scale.py --sizes 1000000 --device cuda --threads 4 \
    --dir "$OUT/scale"

# 3. against intercode 0.0.7 on the GPU (13,500 cells, 5 epochs, one repeat)
step intercode 150 "$PY" benchmarks/bench_intercode.py --device cuda --epochs 5 --repeats 1 \
    --threads 4 --out "$OUT"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "gpu_check: failed: ${failed[*]}; outputs in $OUT" >&2
    exit 1
fi
echo "gpu_check: done; outputs in $OUT"
