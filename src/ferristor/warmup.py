"""Compile ferristor's CPU kernels ahead of use, several at once: ``python -m ferristor.warmup [--jobs N]``.

A kernel is compiled on its first call, one function at a time on one core, and kept in the JIT's
disk cache (``kernel_cache``); a first ``ferristor train`` on a machine waits ~1 min for it. Here
each scenario runs a tiny training through the public API on the path it names — so it compiles
exactly what that path calls,
with the argument types it passes — and the scenarios share out over ``jobs`` processes. Afterwards
every process loads them from the cache. ``make test`` runs this first. Nothing is trained or kept:
the scenarios' models are thrown away; a kernel left out here is compiled on its first call as
before. (No kernel reads this module, so editing it leaves the cached kernels valid:
``kernel_cache.kernel_sources``.)
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# Scenario → the work it compiles, longest first (the pool hands them out in this order). In brackets,
# its compile seconds on a 2-core Zen 3 with an empty cache, two processes (``python -m ferristor.warmup``,
# 127 s for the first six, 2026-12-07; ``conv`` measured alone in one process; all seven 139–164 s in
# clean-clone CI runs, 144 s with ``conv`` third against 153 s last, one cold run each, fresh
# NUMBA_CACHE_DIR); a scenario after another in the same process reuses the pieces they share.
SCENARIOS = {
    "chunks": "batch-1 chunks, hm-var, table transfer [76 s]: mlp_train_chunk_dense, _table_transfer",
    "step": "one fused step and the autograd loop [61 s]: mlp_train, mlp_forward, mlp_backward, loss_grad",
    "conv": "convolutions on one chip and on two at batch 2 (their crossbar layouts) [43 s]: _hybrid_dense, _fp_dense",
    "replicas": "chunks split by replica (16 replicas a thread) [34 s]: mlp_train_chunk_by_replica",
    "baselines": "memristor-sgd, mixed-precision, tiki-taka [26 s]: rule.schemes_cpu",
    "sparse": "the sparse sampler's chunks [22 s]: mlp_train_chunk, _sparse",
    "circuit": "the circuit transfer's quantile sampler [8 s]: _quantile_transfer",
}


def _data(n_in: int, classes: int, n: int = 32):
    rng = np.random.default_rng(0)
    return rng.random((n, n_in), np.float32), (np.arange(n) % classes).astype(np.int64)


def _mlp(replicas: int = 1, sizes=(12, 9, 4), **config):
    from .nn import HybridConfig, HybridMLP, NetworkSpec
    return HybridMLP(NetworkSpec(sizes=sizes), config=HybridConfig(**config), replicas=replicas,
                     seeds=list(range(replicas)))


def _chunks(replicas: int = 1, sampler: str = "dense", **config) -> None:
    from .circuit.transfer import TransferConfig
    from .experiments import fast_step
    from .optim import HybridSGD
    config.setdefault("mode", "hm-var")
    if config["mode"] == "hm-var":
        config.setdefault("transfer", TransferConfig(model="table", sigma_levels=0.1))
    model = _mlp(replicas, **config)
    opt = HybridSGD(model.parameters(), lr=0.1, p=0.5, k=5, sampler=sampler)
    x, y = _data(12, 4)
    fast_step.run(model, opt, x, y, np.arange(replicas * 12).reshape(replicas, 12) % len(x))


def _step(sampler: str = "dense") -> None:
    import torch

    from .experiments import fast_step
    from .nn import functional as F
    from .optim import HybridSGD
    model = _mlp(mode="hm-var")
    opt = HybridSGD(model.parameters(), lr=0.1, p=0.5, k=5, sampler=sampler)
    x, y = _data(12, 4)
    fast_step.step(model, opt, x[:1], y[:1])
    loss = F.cross_entropy(model(torch.from_numpy(x[:1])), torch.from_numpy(y[:1]))
    opt.zero_grad()
    loss.backward()
    opt.step()


def _conv() -> None:
    """One step of a convolution on one chip and on two (crossbar views of two layouts), hybrid and
    fp, at batch 2 (a dense gradient), with a transfer."""
    import torch

    from .nn import HybridConfig, HybridConv2d
    from .optim import HybridSGD
    for mode in ("hm", "fp"):
        for replicas in (1, 2):
            conv = HybridConv2d(2, 3, 3, replicas=replicas if replicas > 1 else None, seeds=list(range(replicas)),
                                config=HybridConfig(mode=mode))
            opt = HybridSGD(conv.parameters(), lr=0.1, p=0.5, k=2)
            x = torch.rand(*([replicas] if replicas > 1 else []), 2, 2, 5, 5, generator=torch.Generator().manual_seed(0))
            conv(x).square().mean().backward()
            opt.step()


def _baselines() -> None:
    from .rule.schemes import SchemeConfig
    for rule in ("memristor-sgd", "mixed-precision", "tiki-taka"):
        _chunks(mode="hm", scheme=SchemeConfig(rule=rule))


def _circuit() -> None:
    from .circuit.transfer import TransferConfig
    for sampler in ("quantiles", "chain"):
        _chunks(transfer=TransferConfig(model="circuit", circuit_sampler=sampler, circuit_table_draws=256))


def _sparse() -> None:
    _chunks(sampler="sparse")
    _step(sampler="sparse")


RUN = {"chunks": _chunks, "step": _step, "conv": _conv, "replicas": lambda: _chunks(replicas=16),
       "baselines": _baselines, "sparse": _sparse, "circuit": _circuit}


def _run(name: str) -> tuple[str, float]:
    from .compile_clock import CompileClock
    from .experiments.fit import set_threads
    set_threads(1)  # a pool process per core: kernels compile the same whatever the thread count
    with CompileClock() as clock:
        RUN[name]()
    return name, clock.seconds


def warm(jobs: int, names=None) -> dict[str, float]:
    """Run the scenarios ``names`` (default: all) in ``jobs`` processes; their compile (or cache load)
    seconds by name."""
    names = list(SCENARIOS) if names is None else list(names)
    if jobs <= 1:
        return dict(_run(n) for n in names)
    import multiprocessing
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(pool.map(_run, names))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferristor.warmup", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2); 0 or 1: this one")
    args = parser.parse_args(argv)
    if args.jobs < 0:
        parser.error(f"--jobs {args.jobs}: a count of processes, 0 or more")
    start = time.perf_counter()
    seconds = warm(args.jobs)
    for name, s in seconds.items():
        print(f"  {name:<10} {s:6.1f} s  {SCENARIOS[name].split(' [')[0]}")
    print(f"kernels compiled or loaded in {time.perf_counter() - start:.0f} s ({max(args.jobs, 1)} process(es))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
