#!/usr/bin/env bash
# What a GPU session should run, in stages sized for the device tool (≤ 10 minutes a call, ~15
# minutes of an H200 in all, start-up included), the acceptance figure first:
#
#   bash bench/gpu_check.sh DATA_DIR OUT tests,choose,fig5c   (first call, ~9 minutes)
#   bash bench/gpu_check.sh DATA_DIR OUT table                (second call, if time is left, ~5 minutes)
#
#   tests   the GPU tests: compiled Triton kernels against the tensor path and the CPU (≤ 160 s)
#   choose  hm, R = 10, k = 100 (Fig. 5c's setting) with the torch and the fused passes; the faster
#           graphed row's passes go to OUT/passes for the fig5c stage (≤ 90 s)
#   fig5c   the whole Fig. 5c (9 k × 10 seeds × 10 epochs) timed, the issue's ≤ 5 minutes, stopped at
#           FIG_LIMIT seconds (default 330); passes from OUT/passes, else FERRISTOR_GPU_PASSES, else torch;
#           FIG_WORKERS trials side by side on CUDA streams (default 9: all of them); should that fail,
#           the rest of the points one after the other (a rerun keeps every finished point)
#   table   BENCHMARKS.md's per-sample table: hm-var at R = 1, 10, 100, 1000 with the torch passes (a run of
#           steps at once, and step by step) and the fused ones; hm at k = 1 (≤ 300 s)
#
# PYTHON (default python3) names the interpreter. DATA_DIR holds mnist/; OUT defaults to runs/gpu-check (git-ignored: kept on a warm machine between
# calls). Runs from a checkout without installing (PYTHONPATH=src), with the machine's own torch/Triton.
set -uo pipefail
DATA=$(realpath "${1:?usage: bench/gpu_check.sh DATA_DIR [OUT] [STAGES]}")  # relative to where it was called
OUT=${2:-runs/gpu-check}
cd "$(dirname "$0")/.."
STAGES=${3:-tests,choose,fig5c,table}
FIG_LIMIT=${FIG_LIMIT:-330}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
has() { [[ ",$STAGES," == *",$1,"* ]]; }

PY=${PYTHON:-python3}  # an interpreter with torch (CUDA), triton, numba, click, tqdm, matplotlib, pytest
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
# every package the stages import, checked before any device time is spent on them
$PY -c "import torch, triton, numba, click, tqdm, matplotlib, pytest; print('torch', torch.__version__, 'triton', triton.__version__, 'numba', numba.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "gpu_check: $PY lacks a package above (set PYTHON=…)"; exit 2; }
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'" || exit 2

if has tests; then
  FERRISTOR_TEST_DATA=$DATA timeout 160 $PY -m pytest -q -p no:cacheprovider tests/rule/test_kernels_triton.py \
      tests/circuit/test_transfer_triton.py tests/nn/test_passes_triton.py tests/nn/test_train_gpu.py tests/test_backend.py \
      "tests/sweeps/test_driver.py::test_gpu_trials_side_by_side_on_streams_give_the_sequential_rows" 2>&1 \
      | tee "$OUT/tests.log" | tail -5
fi
if has choose; then
  timeout 90 $PY bench/bench_gpu.py --replicas 10 --mode hm --k 100 --steps 1000 --slow-steps 20 --passes both \
      --json "$OUT/bench-hm-k100.json" 2>&1 | tail -12
  $PY - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
path = out / "bench-hm-k100.json"
rows = [r for r in json.loads(path.read_text())["rows"]
        if "CUDA graphs" in r["row"] and r["R"] == 10 and "error" not in r] if path.exists() else []
if not rows:
    sys.exit("no graphed row measured: the fig5c stage keeps FERRISTOR_GPU_PASSES (default torch)")
best = min(rows, key=lambda r: r["us_per_step"])
passes = "fused" if "fused" in best["row"] else "torch"
(out / "passes").write_text(passes)
print(f"faster graphed step at R = 10: {passes} passes, {best['us_per_step']:.1f} µs")
EOF
fi
if has fig5c; then
  [[ -f "$OUT/passes" ]] && export FERRISTOR_GPU_PASSES=$(cat "$OUT/passes")
  WORKERS=${FIG_WORKERS:-9}
  echo "fig5c with FERRISTOR_GPU_PASSES=${FERRISTOR_GPU_PASSES:-torch}, --workers $WORKERS" | tee "$OUT/fig5c.log"
  START=$SECONDS  # bash's own clock: GNU time (and bc) are missing from most CUDA images
  timeout "$FIG_LIMIT" $PY -c "from ferristor.cli.main import main; main()" \
      reproduce fig5c --device cuda --workers "$WORKERS" --data-dir "$DATA" --out "$OUT/fig5c" --no-progress 2>&1 \
      | tee -a "$OUT/fig5c.log" | tail -16
  CODE=${PIPESTATUS[0]}
  WALL=$((SECONDS - START))
  echo "fig5c whole: $WALL s wall (exit $CODE)" | tee -a "$OUT/fig5c.log"
  LEFT=$((FIG_LIMIT - WALL))
  if [[ $CODE -ne 0 && $CODE -ne 124 && $WORKERS -gt 1 && $LEFT -gt 30 ]]; then
    echo "fig5c side by side failed (exit $CODE): the remaining points one after the other, ≤ $LEFT s" | tee -a "$OUT/fig5c.log"
    START=$SECONDS
    timeout "$LEFT" $PY -c "from ferristor.cli.main import main; main()" \
        reproduce fig5c --device cuda --data-dir "$DATA" --out "$OUT/fig5c" --no-progress 2>&1 | tee -a "$OUT/fig5c.log" | tail -16
    CODE=${PIPESTATUS[0]}
    echo "fig5c rest: $((SECONDS - START)) s wall (exit $CODE)" | tee -a "$OUT/fig5c.log"
  fi
fi
if has table; then
  timeout 240 $PY bench/bench_gpu.py --replicas 1,10,100,1000 --steps 1000 --passes all --json "$OUT/bench-hm-var.json" 2>&1 | tail -24
  timeout 60 $PY bench/bench_gpu.py --replicas 10 --mode hm --k 1 --steps 500 --slow-steps 40 --passes both --json "$OUT/bench-hm-k1.json" 2>&1 | tail -3
fi
