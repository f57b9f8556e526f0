"""Per-sample training cost of ferristor against the plain-PyTorch ways of doing the same work.

Rows, all in this process at one thread count, µs per sample-replica on the paper's MNIST network
(784–200–100–10, LayerNorm, batch 1):
  - plain PyTorch loop: nn.Linear + LayerNorm + autograd + optim.SGD, one network;
  - replica-batched float: R plain networks in one bmm/autograd program (the fair anchor for R seeds);
  - the same plain loop with nn.Linear → HybridLinear and SGD → HybridSGD (what a user writes), with
    torch's norm and loss, and with ferristor's deterministic Normalize and cross-entropy;
  - ferristor's training step (``ferristor train``: the fused step) for fp / hm / hm-var at R = 1 and R = 10;
  - the torch backend (the path a GPU runs) on the CPU;
and where an hm-var step goes, and what one transfer costs with each transfer model.

``--ab`` instead measures, alternating the variants round by round (min of rounds; fair on a shared,
loaded machine): the plain PyTorch loop, ferristor's hm-var step per call and in compiled chunks
(``fast_step.run``) with the dense and the sparse sampler, at R = 1 and 10, the chunks with the
passes, or passes and hidden updates, step by step instead of a segment's steps at once, and with
the split over threads ferristor does not choose there (rows of each step, or whole replicas); and
the layer-1 update kernel (784×200) with each sampler against p.

    python bench/bench_step.py --threads 1 [--steps 400] [--json out.json]
    python bench/bench_step.py --threads 2 --ab [--steps 400] [--rounds 7]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from ferristor.cpus import describe
from ferristor.atomic import atomic_write
from ferristor.backend import use_backend
from ferristor.circuit.transfer import TransferConfig
from ferristor.experiments import fast_step
from ferristor.experiments.fit import set_threads
from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec, Normalize
from ferristor.nn import functional as nnF
from ferristor.nn import train_cpu
from ferristor.optim import HybridSGD

SIZES = (784, 200, 100, 10)


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, SIZES[0], generator=g) * 2 - 1, torch.randint(0, 10, (n,), generator=g)


def _best(fn, steps: int, reps: int = 3) -> float:
    """Seconds per call: the fastest of ``reps`` timed runs of ``steps`` calls (after a warm-up)."""
    for _ in range(min(20, steps)):
        fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def _loop(model, opt, loss_fn, steps, replicas=None):
    x, y = _data(steps + 50)
    i = [0]

    def one():
        k = i[0] % len(x)
        i[0] += 1
        if replicas:
            idx = (torch.arange(replicas) * 7 + k) % len(x)
            xb, yb = x[idx][:, None], y[idx][:, None]
        else:
            xb, yb = x[k:k + 1], y[k:k + 1]
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _best(one, steps) * 1e6 / (replicas or 1)


def _mlp_layers(linear, norm):
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers += [linear(a, b, i), norm(b)]
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def plain_pytorch(steps: int) -> float:
    torch.manual_seed(0)
    net = _mlp_layers(lambda a, b, i: torch.nn.Linear(a, b, bias=False),
                      lambda b: torch.nn.LayerNorm(b, elementwise_affine=False))
    return _loop(net, torch.optim.SGD(net.parameters(), lr=0.1), F.cross_entropy, steps)


class _BatchedMLP(torch.nn.Module):
    """R float networks as one tensor program: (R, out, in) weights, bmm, layer_norm."""

    def __init__(self, replicas: int):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.ws = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(replicas, b, a, generator=g) * a ** -0.5) for a, b in zip(SIZES[:-1], SIZES[1:]))

    def forward(self, x):
        h = x
        for i, w in enumerate(self.ws):
            h = F.layer_norm(torch.bmm(h, w.transpose(1, 2)), (w.shape[1],))
            if i < len(self.ws) - 1:
                h = torch.relu(h)
        return h


def replica_batched_float(replicas: int, steps: int) -> float:
    net = _BatchedMLP(replicas)
    loss = lambda out, y: F.cross_entropy(out.reshape(-1, 10), y.reshape(-1), reduction="sum")  # noqa: E731
    return _loop(net, torch.optim.SGD(net.parameters(), lr=0.1), loss, steps, replicas)


def user_loop_hybrid(steps: int, deterministic: bool) -> float:
    """The plain loop with hybrid layers and the hybrid optimizer, as a user writes it."""
    cfg = HybridConfig(mode="hm-var")
    net = _mlp_layers(lambda a, b, i: HybridLinear(a, b, config=cfg, seeds=0, name=f"fc{i + 1}"),
                      (lambda b: Normalize()) if deterministic else (lambda b: torch.nn.LayerNorm(b, elementwise_affine=False)))
    loss = nnF.cross_entropy if deterministic else F.cross_entropy
    return _loop(net, HybridSGD(net.parameters(), lr=0.1, p=0.2, k=100), loss, steps)


def _model(mode, replicas):
    m = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode=mode), replicas=replicas, seeds=list(range(replicas)))
    return m, HybridSGD(m.parameters(), lr=0.1, p=0.2, k=100)


def ferristor_step(mode: str, replicas: int, steps: int) -> float:
    """µs per sample-replica of ``ferristor train``'s step (the fused step; transfers every k = 100 included)."""
    m, opt = _model(mode, replicas)
    x, y = (t.numpy() for t in _data(steps + 50))
    i = [0]

    def one():
        idx = (np.arange(replicas) * 7 + i[0]) % len(x)
        i[0] += 1
        fast_step.step(m, opt, x[idx][:, None], y[idx][:, None])
    return _best(one, steps) * 1e6 / replicas


def torch_backend_step(replicas: int, steps: int) -> float:
    with use_backend("torch"):
        m, opt = _model("hm-var", replicas)
        return _loop(m, opt, nnF.cross_entropy, steps, replicas)


def breakdown(replicas: int, steps: int) -> dict[str, float]:
    """µs per sample-replica of each part of an hm-var step (fused CPU path)."""
    m, opt = _model("hm-var", replicas)
    x = (np.random.default_rng(0).random((replicas, 1, SIZES[0]), dtype=np.float32) * 2 - 1)
    y = np.random.default_rng(1).integers(0, 10, (replicas, 1))
    parts = {}

    def passes():
        m.train_pass(x, y)
        for layer in m.layers:
            layer._tapes.clear()
            layer._inputs.clear()
    parts["forward + loss + backward (one call)"] = _best(passes, steps) * 1e6 / replicas
    m.train_pass(x, y)
    saved = [dict(layer._tapes) for layer in m.layers]
    for li, layer in enumerate(m.layers):
        tape = saved[li]["weight"]

        def update(layer=layer, tape=tape):
            layer._tapes["weight"] = list(tape)
            layer.hybrid_step_("weight", lr=0.1, p=0.2, rounding="stochastic")
        parts[f"update layer {li + 1} ({layer.in_features}×{layer.out_features})"] = _best(update, steps) * 1e6 / replicas
    k = opt.param_groups[0]["k"]
    parts[f"transfer, all layers (÷ k = {k})"] = _best(lambda: [l.program_("weight") for l in m.layers],
                                                       max(5, steps // 20)) * 1e6 / replicas / k
    return parts


TRANSFER_CASES = (("ideal (hm)", "hm", "ideal", {}), ("table (hm-var)", "hm-var", "table", {}),
                  ("circuit (hm-var)", "hm-var", "circuit", {}),
                  ("circuit, quantiles (hm-var)", "hm-var", "circuit", {"circuit_sampler": "quantiles"}))


def transfer_cost(repeats: int = 10) -> dict[str, float]:
    """µs to program every weight of the MNIST network once (R = 1), per transfer model, CPU kernels and torch path."""
    out = {}
    for label, mode, model, extra in TRANSFER_CASES:
        chain = model == "circuit" and extra.get("circuit_sampler", "chain") == "chain"
        for backend in (("numba",) if chain else ("numba", "torch")):  # the chain: tensor ops always
            with use_backend(backend):
                m = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode=mode, transfer=TransferConfig(model=model, **extra)),
                              seeds=0)
                n = 3 if chain else repeats
                path = 'fused kernel' if backend == 'numba' and not chain else 'tensor ops'
                out[f"{label}, {path}"] = _best(
                    lambda: [l.program_("weight") for l in m.layers], n, reps=2) * 1e6
    return out


def _alternate(fns: dict, rounds: int) -> dict:
    """Seconds per call of each variant: every round times each variant once (in turn), min over rounds."""
    best = {k: float("inf") for k in fns}
    for fn, _ in fns.values():
        fn()  # compile, warm up
    for _ in range(rounds):
        for name, (fn, calls) in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], (time.perf_counter() - t) / calls)
    return best


def _plain_fn(steps):
    torch.manual_seed(0)
    net = _mlp_layers(lambda a, b, i: torch.nn.Linear(a, b, bias=False),
                      lambda b: torch.nn.LayerNorm(b, elementwise_affine=False))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = _data(steps)

    def run():
        for k in range(steps):
            loss = F.cross_entropy(net(x[k:k + 1]), y[k:k + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return run


def _ferristor_fn(replicas, steps, sampler, chunked, schedule=None, together=True, block=True):
    """``schedule`` forces the chunks' split over threads ('rows' or 'replicas'); None: ferristor's choice.
    ``together=False``: the chunks update the hidden weights step by step instead of a segment's
    steps together; ``block=False``: they run the passes step by step instead of a segment's steps
    at once (the same bits either way)."""
    m = HybridMLP(NetworkSpec(SIZES), config=HybridConfig(mode="hm-var"), replicas=replicas, seeds=list(range(replicas)))
    opt = HybridSGD(m.parameters(), lr=0.1, p=0.2, k=100, sampler=sampler)
    x, y = (t.numpy() for t in _data(steps + 50))
    idx = (np.arange(replicas)[:, None] * 7 + np.arange(steps)[None, :]) % len(x)

    def run():
        if chunked:
            chosen = fast_step.by_replica
            if schedule is not None:
                fast_step.by_replica = lambda n, threads=None, passes_at_once=False: schedule == "replicas"
            defer_min, block_passes = train_cpu.DEFER_MIN_STEPS, train_cpu.BLOCK_PASSES
            if not together:
                train_cpu.DEFER_MIN_STEPS = 1 << 30
            train_cpu.BLOCK_PASSES = block
            try:
                fast_step.run(m, opt, x, y, idx)
            finally:
                fast_step.by_replica = chosen
                train_cpu.DEFER_MIN_STEPS, train_cpu.BLOCK_PASSES = defer_min, block_passes
        else:
            for t in range(steps):
                fast_step.step(m, opt, x[idx[:, t:t + 1]], y[idx[:, t:t + 1]])
    return run


def _kernel_fn(sampler, p, replicas, calls):
    from ferristor.rule import kernels_cpu as K
    from ferristor.rule.streams import STREAM_UPDATE, stream_keys
    rng = np.random.default_rng(0)
    h = rng.integers(-255, 256, (replicas, 784, 200)).astype(np.float32)
    pend = np.zeros(h.shape, np.uint8)
    delta = (rng.standard_normal((replicas, 200)) * 0.01).astype(np.float32)
    x = rng.random((replicas, 784)).astype(np.float32)
    keys = stream_keys(list(range(replicas)), "fc1.weight", STREAM_UPDATE)
    consts = K.update_constants(fp=False, sampler=sampler, lr=0.1, p=p, lsb=2 ** -9, max_hidden=511)
    step = [0]

    def run():
        for _ in range(calls):
            K.rank1_(False, sampler, h, pend, delta, x, keys, step[0], consts)
            step[0] += 1
            pend[:] = 0
    return run


def _kernel_steps_fn(p, replicas, steps):
    """The layer-1 update of ``steps`` steps in one pass (the chunks' segments), dense sampler."""
    from ferristor.rule import kernels_cpu as K
    from ferristor.rule.streams import STREAM_UPDATE, stream_keys
    rng = np.random.default_rng(0)
    h = rng.integers(-255, 256, (replicas, 784, 200)).astype(np.float32)
    pend = np.zeros(h.shape, np.uint8)
    deltas = (rng.standard_normal((steps, replicas, 200)) * 0.01).astype(np.float32)
    xs = rng.random((steps, replicas, 784)).astype(np.float32)
    keys = stream_keys(list(range(replicas)), "fc1.weight", STREAM_UPDATE)

    def run():
        K.hybrid_update_steps_(h, pend, keys, 0, lr=0.1, lsb=2 ** -9, p=p, rounding="stochastic", max_hidden=511,
                               deltas=deltas, xs=xs)
        pend[:] = 0
    return run


def ab(steps: int, rounds: int) -> dict:
    out = {}
    fns = {"plain PyTorch loop (nn.Linear + LayerNorm + autograd + SGD)": (_plain_fn(steps), steps)}
    for r in (1, 10):
        n = steps if r == 1 else max(20, steps // 4)
        for sampler in ("dense", "sparse"):
            fns[f"hm-var R={r} {sampler}, one call per step"] = (_ferristor_fn(r, n, sampler, False), n * r)
            fns[f"hm-var R={r} {sampler}, compiled chunks"] = (_ferristor_fn(r, n, sampler, True), n * r)
            if sampler == "dense":
                fns[f"hm-var R={r} dense, compiled chunks, passes step by step"] = (
                    _ferristor_fn(r, n, "dense", True, block=False), n * r)
                fns[f"hm-var R={r} dense, compiled chunks, passes and hidden updates step by step"] = (
                    _ferristor_fn(r, n, "dense", True, together=False, block=False), n * r)
        other = "rows" if fast_step.by_replica(r, passes_at_once=True) else "replicas"
        fns[f"hm-var R={r} dense, compiled chunks, {other} split (not chosen)"] = (
            _ferristor_fn(r, n, "dense", True, other), n * r)
    out["steps"] = {k: v * 1e6 for k, v in _alternate(fns, rounds).items()}
    kern = {}
    for p in (0.5, 0.2, 0.1, 0.05, 0.01):
        for sampler in ("dense", "sparse"):
            kern[f"p={p} {sampler}"] = (_kernel_fn(sampler, p, 10, 10), 10 * 10 * 784 * 200)
    kern["p=0.2 dense, 50 steps together"] = (_kernel_steps_fn(0.2, 10, 50), 10 * 50 * 784 * 200)
    out["kernel_ns_per_weight"] = {k: v * 1e9 for k, v in _alternate(kern, rounds).items()}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--json", default=None)
    ap.add_argument("--ab", action="store_true", help="the alternating comparison of samplers and chunks (issue 16)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--transfers", action="store_true", help="only the table of one transfer per transfer model")
    a = ap.parse_args()
    set_threads(a.threads)
    s = a.steps
    if a.transfers:
        _print_transfers(transfer_cost())
        return
    if a.ab:
        res = ab(s, a.rounds)
        base = next(iter(res["steps"].values()))
        print(f"\nmachine: {describe()}, threads={a.threads}, torch {torch.__version__}, "
              f"min of {a.rounds} alternating rounds")
        w = max(map(len, res["steps"]))  # the longest row's label sets the column
        print(f"{'what':{w}s} {'µs/sample-replica':>18s} {'× plain':>8s}")
        for name, us in res["steps"].items():
            print(f"{name:{w}s} {us:18.1f} {us / base:8.3f}")
        print("\nlayer-1 update kernel (R = 10, 784×200), ns per weight:")
        for name, ns in res["kernel_ns_per_weight"].items():
            print(f"  {name:30s} {ns:8.3f}")
        if a.json:
            with atomic_write(a.json, "w") as f:
                json.dump({"threads": a.threads, "rounds": a.rounds, **res}, f, indent=1)
        return
    rows = [("plain PyTorch loop (nn.Linear + LayerNorm + autograd + SGD)", 1, plain_pytorch(s)),
            ("replica-batched float (R networks in one bmm program)", 10, replica_batched_float(10, s // 4)),
            ("plain loop, HybridLinear + HybridSGD (torch LayerNorm + CE)", 1, user_loop_hybrid(s, False)),
            ("plain loop, HybridLinear + HybridSGD (ferristor Normalize + CE)", 1, user_loop_hybrid(s, True))]
    for mode in ("hm-var", "hm", "fp"):
        for r in (1, 10):
            rows.append((f"ferristor {mode} (fused step)", r, ferristor_step(mode, r, s if r == 1 else s // 4)))
    rows.append(("ferristor hm-var, torch backend on the CPU", 10, torch_backend_step(10, max(10, s // 20))))
    base = rows[0][2]
    print(f"\nmachine: {describe()}, threads={a.threads}, torch {torch.__version__}")
    w = max(len(name) for name, _, _ in rows)
    print(f"{'what':{w}s} {'R':>3s} {'µs/sample-replica':>18s} {'× plain':>8s}")
    for name, r, us in rows:
        print(f"{name:{w}s} {r:3d} {us:18.1f} {us / base:8.2f}")
    parts = breakdown(10, s // 4)
    print("\nwhere an hm-var step goes at R = 10 (µs per sample-replica):")
    for k, v in parts.items():
        print(f"  {k:48s} {v:8.1f}")
    cost = transfer_cost()
    _print_transfers(cost)
    if a.json:
        with atomic_write(a.json, "w") as f:
            json.dump({"threads": a.threads, "rows": rows, "breakdown": parts, "transfer_us": cost}, f, indent=1)


def _print_transfers(cost: dict) -> None:
    n_w = sum(x * y for x, y in zip(SIZES[:-1], SIZES[1:]))
    print(f"\none transfer of all {n_w:,} weights (R = 1):")
    for k, v in cost.items():
        print(f"  {k:48s} {v / 1e3:8.2f} ms {v * 1e3 / n_w:8.2f} ns/weight")


if __name__ == "__main__":
    main()
