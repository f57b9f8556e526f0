#!/usr/bin/env bash
# Everything a GPU session should run, in one go and in this order, sized for ~12 minutes of an
# H200 (the budget a lent GPU comes with): the GPU tests (compiled Triton kernels against the
# tensor path and the CPU), the per-sample table of BENCHMARKS.md (hm-var and hm, both passes), then
# the whole Fig. 5c timed (the issue's ≤ 5 minutes), stopped at FIG_LIMIT seconds if it runs long —
# with FERRISTOR_GPU_PASSES=fused when that row was the faster (set it before calling).
#
#   bash bench/gpu_check.sh DATA_DIR [OUT]     (DATA_DIR holds mnist/; OUT defaults to runs/gpu-check)
#
# Runs from a checkout without installing (PYTHONPATH=src), with the machine's own torch/Triton.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: bench/gpu_check.sh DATA_DIR [OUT]}
OUT=${2:-runs/gpu-check}
FIG_LIMIT=${FIG_LIMIT:-330}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton, numba; print('torch', torch.__version__, 'triton', triton.__version__, 'numba', numba.__version__)" | tee -a "$OUT/gpu.txt"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/rule/test_kernels_triton.py tests/circuit/test_transfer_triton.py \
    tests/nn/test_passes_triton.py tests/nn/test_train_gpu.py tests/nn/test_layers.py tests/test_backend.py 2>&1 | tee "$OUT/tests.log" | tail -5
timeout 170 python3 bench/bench_gpu.py --replicas 1,10,100,1000 --steps 1000 --passes both --json "$OUT/bench-hm-var.json" 2>&1 | tail -20
timeout 60 python3 bench/bench_gpu.py --replicas 10 --mode hm --k 1 --steps 500 --slow-steps 40 --passes both --json "$OUT/bench-hm-k1.json" 2>&1 | tail -3
/usr/bin/time -f "fig5c whole: %e s wall" timeout "$FIG_LIMIT" python3 -c "from ferristor.cli.main import main; main()" \
    reproduce fig5c --device cuda --data-dir "$DATA" --out "$OUT/fig5c" --no-progress 2>&1 | tee "$OUT/fig5c.log" | tail -16
