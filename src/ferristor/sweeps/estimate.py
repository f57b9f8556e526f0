"""CPU-time estimates for ``ferristor sweep --dry-run``, from the measured per-sample costs in
BENCHMARKS.md ("Per-sample training cost", 1 thread, fused numba kernels, MNIST network).

Per sample and replica a step costs a + b/R µs (R replicas share the passes), fitted to the R = 1
and R = 10 rows of each mode, plus one transfer of every weight every k samples, scaled by the network's weight count (the per-weight update
dominates); an evaluation costs about a forward pass per test sample and replica. The torch backend
is ~30× slower (the reference row). A rough figure for planning, not a promise: the load of the
machine changes it by tens of per cent.
"""
from __future__ import annotations

# µs per sample-replica at R = 1 and R = 10 (BENCHMARKS.md, 2026-11-28, 1 thread, idle machine).
_MEASURED = {"fp": (239.2, 138.5), "hm": (325.9, 181.6), "hm-var": (320.4, 188.0)}
_TORCH_FACTOR = 5599.0 / 188.0  # torch reference against numba, hm-var R = 10
_REF_WEIGHTS = 784 * 200 + 200 * 100 + 100 * 10  # the network the table measured
# One transfer of every weight, R = 1, fused numba (BENCHMARKS.md, "Cost of the transfer models"): µs.
_TRANSFER_US = {"fp": 0.0, "hm": 130.0, "hm-var": 770.0}
# The same with transfer model 'circuit', by sampler and backend: the device chain for every weight
# (torch float64 whatever the backend), or its tabulated per-level distribution (fused numba kernel,
# or tensor operations) (BENCHMARKS.md, "A fused kernel for the circuit transfer's quantiles sampler")
_CIRCUIT_TRANSFER_US = {("chain", "numba"): 46_800.0, ("chain", "torch"): 46_800.0,
                        ("quantiles", "numba"): 710.0, ("quantiles", "torch"): 3_310.0}
_FORWARD_US = 20.0  # µs per test sample-replica of an evaluation (a forward pass, R = 10 row's share)
# What a trial and a worker cost besides training, measured with sweeps of tiny trials (0.001 epoch,
# one seed, one worker, warm kernel cache; 2-core Intel Xeon, 2026-12-06): 2 trials took 10.8 s wall,
# 6 trials 14.1 s, so ~0.8 s a trial (0.2 s of it estimated training) and ~9 s once (start, imports,
# loading the compiled kernels). A cold cache adds ~20 s once per machine (the summary's compile line).
TRIAL_START_S = 0.6
WORKER_START_S = 9.0


def step_us(mode: str, replicas: int) -> float:
    r1, r10 = _MEASURED[mode]
    b = (r1 - r10) / 0.9
    return (r1 - b) + b / replicas


def trial_cpu_seconds(config: dict, n_train: int, n_test: int) -> float:
    sizes = config["network"]["sizes"]
    weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    scale = weights / _REF_WEIGHTS
    torch_factor = _TORCH_FACTOR if config.get("backend") == "torch" else 1.0
    r = len(config["seeds"])
    steps = max(1, round(config["epochs"] * (n_train // config["batch"])))
    samples = steps * config["batch"] * r
    n_eval = min(n_test, config["test_limit"] or n_test)
    evals = max(1, round(config["epochs"] / config["eval_every"]))
    circuit = config["mode"] != "fp" and config["transfer"]["model"] == "circuit"
    if circuit:
        backend = "torch" if config.get("backend") == "torch" else "numba"
        transfer_us = _CIRCUIT_TRANSFER_US[config["transfer"].get("circuit_sampler", "chain"), backend]
    else:
        transfer_us = _TRANSFER_US[config["mode"]] * torch_factor
    per_sample = step_us(config["mode"], r) * torch_factor + transfer_us / config["rule"]["k"]
    return TRIAL_START_S + 1e-6 * scale * (samples * per_sample + evals * n_eval * r * _FORWARD_US * torch_factor)
