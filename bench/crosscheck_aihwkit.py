"""Cross-check of ferristor's mixed-precision baseline against IBM aihwkit's own implementation
(``MixedPrecisionCompound``, Nandakumar et al., Front. Neurosci. 14:406, 2020) on the same small
network: the paper's ECG network (20–200–1, ReLU, no normalisation, no bias, sigmoid + binary
cross-entropy, online, batch 1) — or ``--dataset mnist`` (784–200–100–10, LayerNorm, softmax),
optionally on its first ``--train-limit`` samples — from the same initial weights, in the same
sample order, at the same lr. Results: RESULTS.md, "Learning rules on the same devices".

aihwkit is not a dependency of ferristor: this script runs in a separate venv that has both (aihwkit
built from its source distribution against the torch ferristor uses) and imports ferristor from
``src`` (numpy, numba, click and tqdm installed there too):

    python3.11 -m venv /tmp/aihwvenv
    /tmp/aihwvenv/bin/pip install torch==2.13.0 numba==0.68.1 click tqdm protobuf requests \
        "scikit-build>=0.18.1" "pybind11>=3.0.1" "cmake>=4.2.1" ninja wheel mypy
    apt-get install -y libopenblas-dev
    /tmp/aihwvenv/bin/pip download aihwkit==1.2.0 --no-deps --no-binary aihwkit --no-build-isolation -d /tmp/aihwsrc
    cd /tmp/aihwsrc && tar xzf aihwkit-1.2.0.tar.gz && cd aihwkit-1.2.0
    PATH=/tmp/aihwvenv/bin:$PATH USE_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 19 \
        /tmp/aihwvenv/bin/pip wheel . --no-build-isolation --no-deps -w /tmp/aihwsrc/wheel
    /tmp/aihwvenv/bin/pip install --no-deps /tmp/aihwsrc/wheel/aihwkit-1.2.0-*.whl

(``--no-build-isolation`` also for the download: pip prepares the sdist's metadata, and an isolated
build would fetch its own torch. The PyPI wheel of aihwkit 1.1.0 imports under torch 2.13 but is
ABI-incompatible with it: its tiles' ``set_weights`` refuses every tensor. The CPU-only build, 41
ninja steps at 2 jobs, took 363 s wall under nice 19 on the 2 shared cores while two training
runs used them; the wheel is 1.5 MB.) Then:

    PYTHONPATH=src nice -n 19 /tmp/aihwvenv/bin/python bench/crosscheck_aihwkit.py --dataset ecg \
        --data-dir ../shared/data --seeds 0-4 --epochs 10 --with-var --trace-steps 20000 [--json out.json]
    PYTHONPATH=src nice -n 19 /tmp/aihwvenv/bin/python bench/crosscheck_aihwkit.py --dataset mnist \
        --train-limit 10000 --data-dir ../shared/data --seeds 0-4 --epochs 1 --with-var --trace-steps 1000

What each row trains (one row per implementation, seeds as independent chips):

* ``ferristor p=1`` — ferristor's own training path (``experiments.train.train``: the fused CPU
  step, the replicas of ``compare-rules``) with rule ``mixed-precision``, mode ``hm`` (ideal
  writes), k = 1, p = 1 (no update mask) and lr = lr_task·p_task (ECG 0.01·0.2 = 0.002, MNIST
  0.1·0.2 = 0.02: the masked rule's expected step).
* ``aihwkit`` — the same network of two ``AnalogLinear`` tiles with
  ``DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=ConstantStepDevice(...)))``,
  ``AnalogSGD`` at the same lr, trained by a plain loop.
* ``ferristor p=0.2`` — the task's lr and p (the same expected step), mode ``hm``: what the
  Bernoulli mask changes.
* ``ferristor hm-var p=0.2`` (``--with-var``) — the ``compare-rules`` row itself (writes with
  variability), for reference.

Mapping (ours → aihwkit):

* one memristor level (``level_step`` = 2^6 hidden LSBs = 0.125) → ``ConstantStepDevice.dw_min``
  = 0.125 and ``MixedPrecisionCompound.granularity`` = 0.125 (ε = one level, our ``epsilon`` = 1).
* the pair's range, sign + 7 magnitude levels (±0.875) → ``w_max`` = 0.875, ``w_min`` = −0.875
  (the constant-step device clips there as our level saturates at ±7).
* ideal writes (mode ``hm``: a level lands exactly on level·0.125) → no device-to-device or
  cycle-to-cycle variation: ``dw_min_dtod = dw_min_std = up_down = up_down_dtod = w_max_dtod =
  w_min_dtod = 0``, ``reset_std = 0``. With exact steps of 0.125 from weights on the grid, the
  aihwkit weights stay on our 15 values.
* χ (float32, ours in levels, aihwkit's in weight units) → aihwkit's χ; the threshold and
  transfer n = trunc(χ/ε), level += n, χ −= n·ε are the same arithmetic on both sides.
* k = 1 (χ checked after every sample) → ``transfer_every = 1``, ``n_rows_per_transfer = -1``
  (the whole matrix each time), ``transfer_lr = 1``.
* float outer product → ``n_x_bins = n_d_bins = 0`` (no quantisation of x and d).
* our passes read the weights exactly → ``forward.is_perfect = backward.is_perfect = True`` (no
  ADC/DAC quantisation, noise, bound or noise management, no output scaling); no bias; and
  ``forward.out_bound = backward.out_bound = 0`` (no bound): with a perfect forward aihwkit does not
  clip an output, but its periphery still zeroes the gradient of any output at or beyond
  0.999·out_bound (12 by default), so a confident ECG logit (|z| ≥ 11.99) would stop the update of
  the whole sample in aihwkit and not in ferristor (``--out-bound 12`` shows that effect).
* the same chip at step 0: the initial weights of each seed are ferristor's (drawn from the seed,
  truncated to their level; mode ``hm`` programs them exactly), copied into the tiles.
* the same sample order: ``experiments.fit.epoch_order`` of the seed (what ``ferristor train``
  draws), and ferristor's loss (``experiments.fit.default_loss``: its sigmoid + binary
  cross-entropy, or softmax + cross-entropy) on both sides; on MNIST ferristor's own ``Normalize``
  (LayerNorm without γ, β) sits between the aihwkit tiles, as in ``HybridMLP``.

What cannot be matched, and is handled as stated:

* ferristor's Bernoulli mask (each synapse's update kept with probability p): aihwkit has none. The
  comparison row therefore runs ferristor at p = 1 with lr·p; the p = 0.2 row shows the mask.
* hm-var's write variability (a write lands on the level's measured mean + σ·z, σ = 0.594 level,
  never accumulating; nonuniform level means): aihwkit's ``dw_min_std`` is a per-pulse noise that
  accumulates and its steps are uniform, a different model; the cross-check is on ideal writes.
* aihwkit writes the transfer as pulse trains (``PulsedRPUWeightUpdater`` with update and BL
  management forced on): a row whose largest |n| is 1 gets exactly its ±1 pulses; when some
  |n| > 1 in a row, the others' pulse counts are drawn (the right mean). With k = 1 and these
  lr, |n| > 1 is rare. aihwkit also skips the transfer of the very first update (its update
  counter starts at 0), which ferristor does not.
* aihwkit computes χ += lr·d⊗x in weight units (BLAS ger; its χ is the gradient's sign, ours the
  change's), ferristor χ += (−lr/0.125)·δ·x in levels: the same values up to float32 rounding
  (measured on ECG seed 0: at most 6·10⁻⁷ level apart after 2,000 samples), so a χ that lands
  within that of the threshold can round differently, after which the two trajectories separate.
  ``--trace-steps N`` runs seed 0's first N samples side by side and reports the first sample
  after which a weight differs (with both χ there) and how many synapses sit at a different level.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from ferristor.atomic import atomic_write
from ferristor.data import load_dataset
from ferristor.data.registry import Dataset
from ferristor.experiments.config import TASKS, task_config
from ferristor.experiments.fit import default_loss, epoch_order, set_threads
from ferristor.experiments.seeds import parse_seeds
from ferristor.experiments.train import build_model, train
from ferristor.nn import Normalize

LEVEL = 0.125      # HybridConfig().level_step: one memristor level in weight units
MAX_LEVEL = 7      # PAPER_LAYOUT.max_level


def ferristor_config(dataset, seeds, epochs, *, lr, p, mode="hm"):
    return task_config(dataset, mode, rule="mixed-precision", k=1, lr=lr, p=p, seeds=list(seeds), epochs=epochs,
                       eval_every=epochs, checkpoint_every=0, threads=1)


def run_ferristor(data, seeds, epochs, *, lr, p, mode):
    """ferristor's own path (the replicas of compare-rules): final test accuracy per seed, wall s."""
    cfg = ferristor_config(data.name, seeds, epochs, lr=lr, p=p, mode=mode)
    t0 = time.perf_counter()
    res = train(cfg, None, progress=False, dataset=data)
    return [float(a) for a in res["final_test_accuracy"]], time.perf_counter() - t0


def initial_weights(dataset, seed) -> list[torch.Tensor]:
    """Seed ``seed``'s chip at step 0 (mode hm: exactly level·0.125), one (out, in) tensor per layer."""
    model = build_model(ferristor_config(dataset, [seed], 1, lr=0.01, p=1.0))
    return [layer.weight.data[0].clone() for layer in model.layers]


def aihwkit_rpu_config(out_bound: float = 0.0):
    from aihwkit.simulator.configs import ConstantStepDevice, DigitalRankUpdateRPUConfig, MixedPrecisionCompound

    device = ConstantStepDevice(dw_min=LEVEL, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0, up_down_dtod=0.0,
                                w_max=MAX_LEVEL * LEVEL, w_min=-MAX_LEVEL * LEVEL, w_max_dtod=0.0, w_min_dtod=0.0,
                                reset_std=0.0)
    rpu = DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(
        device=device, granularity=LEVEL, transfer_every=1, n_rows_per_transfer=-1, transfer_lr=1.0,
        n_x_bins=0, n_d_bins=0))
    rpu.forward.is_perfect = True
    rpu.backward.is_perfect = True
    # Even with a perfect forward, aihwkit's periphery (TileWithPeriphery.post_forward/pre_backward)
    # zeroes the gradient of every output at or beyond 0.999·forward.out_bound (12 by default),
    # though the output itself is not clipped. 0 = no bound, as our passes have none.
    rpu.forward.out_bound = out_bound
    rpu.backward.out_bound = out_bound
    rpu.mapping.digital_bias = False
    return rpu


def aihwkit_model(dataset, weights, seed, out_bound: float = 0.0):
    """ferristor's network (``NetworkSpec`` of the task) with aihwkit tiles in place of the hybrid
    layers: AnalogLinear (no bias), ferristor's own ``Normalize`` where the spec has one, ReLU."""
    from aihwkit.nn import AnalogLinear, AnalogSequential

    torch.manual_seed(seed)
    spec = task_config(dataset).network
    layers, modules = [], []
    for li, w in enumerate(weights):
        layer = AnalogLinear(w.shape[1], w.shape[0], bias=False, rpu_config=aihwkit_rpu_config(out_bound))
        layer.set_weights(w.clone())
        layers.append(layer)
        modules.append(layer)
        last = li == len(weights) - 1
        if spec.norm != "none" and (not last or spec.output_norm):
            modules.append(Normalize(spec.norm))
        if not last:
            modules.append(torch.nn.ReLU())
    return AnalogSequential(*modules), layers


def aihwkit_weights(layers) -> list[torch.Tensor]:
    return [layer.get_weights()[0].detach().clone() for layer in layers]


def _step(model, opt, loss_fn, x, y):
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


@torch.no_grad()
def _accuracy(model, x, y) -> float:
    model.eval()
    out = model(x)
    model.train()
    pred = out.argmax(-1) if out.shape[-1] > 1 else (out[:, 0] > 0).long()
    return float((pred == y).double().mean())


def run_aihwkit(data, seed, epochs, *, lr, out_bound: float = 0.0):
    from aihwkit.optim import AnalogSGD

    weights = initial_weights(data.name, seed)
    model, layers = aihwkit_model(data.name, weights, seed, out_bound)
    check_ideal_device(layers)
    loss_fn = default_loss(weights[-1].shape[0])
    opt = AnalogSGD(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    x_train, y_train = data.x_train.float(), data.y_train.long()
    n = len(x_train)
    t0 = time.perf_counter()
    for epoch in range(math.ceil(epochs)):
        order = epoch_order([seed], epoch, n)[0]
        stop = n if epoch + 1 <= epochs else int(round((epochs - epoch) * n))
        for i in order[:stop].tolist():
            _step(model, opt, loss_fn, x_train[i:i + 1], y_train[i:i + 1])
    wall = time.perf_counter() - t0
    w = aihwkit_weights(layers)
    off_grid = max(float((wi / LEVEL - torch.round(wi / LEVEL)).abs().max()) for wi in w)
    return _accuracy(model, data.x_test.float(), data.y_test.long()), wall, off_grid


def _their_chi(layers) -> list[torch.Tensor]:
    """aihwkit's χ of each tile in levels, with our sign (aihwkit accumulates the gradient, lr·d⊗x; we
    accumulate the change)."""
    return [-next(layer.analog_tiles()).get_hidden_parameters()["hidden_weights_chi"] / LEVEL for layer in layers]


def check_ideal_device(layers) -> None:
    """The tiles' device parameters as mapped: steps of exactly one level up and down, bounds ±7 levels."""
    for layer in layers:
        hp = next(layer.analog_tiles()).get_hidden_parameters()
        assert torch.all(hp["dwmin_up"] == LEVEL) and torch.all(hp["dwmin_down"] == LEVEL), "steps not one level"
        assert torch.all(hp["max_bound"] == MAX_LEVEL * LEVEL) and torch.all(hp["min_bound"] == -MAX_LEVEL * LEVEL)


def trace(data, seed, steps, *, lr, out_bound: float = 0.0, show: int = 4) -> dict:
    """Seed ``seed``'s first ``steps`` samples, ferristor (plain PyTorch loop, p = 1) and aihwkit side by
    side from the same weights: the first sample after which a weight differs (with the χ of the
    synapses that differ, both sides, in levels, before that sample), and the number of synapses at
    a different level every tenth of the way."""
    from aihwkit.optim import AnalogSGD
    from ferristor.nn import HybridConfig, HybridMLP
    from ferristor.optim import HybridSGD
    from ferristor.rule.schemes import SchemeConfig

    cfg = ferristor_config(data.name, [seed], 1, lr=lr, p=1.0)
    ours = HybridMLP(cfg.network, config=HybridConfig(mode="hm", scheme=SchemeConfig(rule="mixed-precision")),
                     seeds=seed)
    ours_opt = HybridSGD(ours.parameters(), lr=lr, p=1.0, k=1)
    w0 = [layer.weight.data.clone() for layer in ours.layers]
    assert all(torch.equal(a, b) for a, b in zip(w0, initial_weights(data.name, seed))), "not the same chip at step 0"
    theirs, layers = aihwkit_model(data.name, w0, seed, out_bound)
    check_ideal_device(layers)
    their_opt = AnalogSGD(theirs.parameters(), lr=lr)
    their_opt.regroup_param_groups(theirs)
    loss_fn = default_loss(w0[-1].shape[0])
    x_train, y_train = data.x_train.float(), data.y_train.long()
    order = epoch_order([seed], 0, len(x_train))[0][:steps].tolist()
    first_diff, detail, diffs = None, [], []
    our_chi = lambda: [layer._buf("weight", "chi").clone() for layer in ours.layers]  # noqa: E731  levels
    for s, i in enumerate(order):
        if first_diff is None:
            before = ([layer.weight.data.clone() for layer in ours.layers], aihwkit_weights(layers), our_chi(),
                      _their_chi(layers))
        _step(ours, ours_opt, loss_fn, x_train[i:i + 1], y_train[i:i + 1])
        _step(theirs, their_opt, loss_fn, x_train[i:i + 1], y_train[i:i + 1])
        a = [layer.weight.data for layer in ours.layers]
        b = aihwkit_weights(layers)
        n_diff = sum(int((x != y).sum()) for x, y in zip(a, b))
        if n_diff and first_diff is None:
            first_diff = s + 1
            after_chi = (our_chi(), _their_chi(layers))
            for li, (x, y) in enumerate(zip(a, b)):
                for o, k in (x != y).nonzero().tolist()[:show]:
                    detail.append({
                        "layer": li + 1, "synapse": [o, k],
                        "ferristor_level": [float(before[0][li][o, k] / LEVEL), float(x[o, k] / LEVEL)],
                        "aihwkit_level": [float(before[1][li][o, k] / LEVEL), float(y[o, k] / LEVEL)],
                        "ferristor_chi_before": float(before[2][li][o, k]), "aihwkit_chi_before": float(before[3][li][o, k]),
                        "ferristor_chi_after": float(after_chi[0][li][o, k]), "aihwkit_chi_after": float(after_chi[1][li][o, k])})
        if (s + 1) % max(steps // 10, 1) == 0:
            diffs.append((s + 1, n_diff))
    total = sum(w.numel() for w in w0)
    a = [layer.weight.data for layer in ours.layers]
    b = aihwkit_weights(layers)
    same = sum(int((x == y).sum()) for x, y in zip(a, b))
    moved = sum(int((x != w).sum()) for x, w in zip(a, w0))
    return {"seed": seed, "steps": steps, "first_sample_with_a_difference": first_diff, "first_difference": detail,
            "synapses": total, "same_level_at_end": same, "moved_from_init_ferristor": moved,
            "differing_synapses_every_tenth": diffs}


def _mean_sd(xs) -> str:
    xs = 100 * np.asarray(xs, dtype=float)
    sd = xs.std(ddof=1) if xs.size > 1 else 0.0
    return f"{xs.mean():.2f} ± {sd:.2f}"


def subset(data, n_train: int) -> Dataset:
    """The first ``n_train`` training samples (0: all) and the whole test set."""
    if not n_train or n_train >= len(data.x_train):
        return data
    return Dataset(data.name, data.x_train[:n_train], data.y_train[:n_train], data.x_test, data.y_test,
                   data.n_classes)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ecg", choices=("ecg", "mnist"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--train-limit", type=int, default=0, help="train on the first N training samples (0: all)")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--with-var", action="store_true", help="also the compare-rules row (hm-var, the task's p)")
    ap.add_argument("--trace-steps", type=int, default=0, help="seed 0's first N samples side by side (0: skip)")
    ap.add_argument("--skip-aihwkit", action="store_true", help="ferristor rows only (no aihwkit needed)")
    ap.add_argument("--out-bound", type=float, default=0.0,
                    help="aihwkit forward/backward out_bound (0: none, the mapping; 12: aihwkit's default)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    set_threads(1)
    seeds = parse_seeds(args.seeds)
    data = subset(load_dataset(args.dataset, args.data_dir), args.train_limit)
    lr_task, p_task = TASKS[args.dataset]["lr"], TASKS[args.dataset]["p"]
    lr_eff = lr_task * p_task  # p = 1 at lr·p: the same expected step as the task's masked rule
    rows = []

    def add(label, accs, wall, **extra):
        rows.append({"implementation": label, "accuracy": accs, "wall_s": wall, **extra})
        print(f"{label}: {[round(100 * a, 2) for a in accs]} ({wall:.0f} s)", flush=True)

    accs, wall = run_ferristor(data, seeds, args.epochs, lr=lr_eff, p=1.0, mode="hm")
    add(f"ferristor mixed-precision, hm, p=1, lr={lr_eff:g}", accs, wall)
    if not args.skip_aihwkit:
        import aihwkit
        res = [run_aihwkit(data, s, args.epochs, lr=lr_eff, out_bound=args.out_bound) for s in seeds]
        add(f"aihwkit {aihwkit.__version__} MixedPrecisionCompound(ConstantStepDevice), lr={lr_eff:g}"
            + (f", out_bound={args.out_bound:g}" if args.out_bound else ""),
            [r[0] for r in res], sum(r[1] for r in res), max_off_grid_levels=max(r[2] for r in res))
        print(f"aihwkit weights off the 0.125 grid by at most {rows[-1]['max_off_grid_levels']:.3g} level", flush=True)
    accs, wall = run_ferristor(data, seeds, args.epochs, lr=lr_task, p=p_task, mode="hm")
    add(f"ferristor mixed-precision, hm, p={p_task:g}, lr={lr_task:g}", accs, wall)
    if args.with_var:
        accs, wall = run_ferristor(data, seeds, args.epochs, lr=lr_task, p=p_task, mode="hm-var")
        add(f"ferristor mixed-precision, hm-var, p={p_task:g}, lr={lr_task:g}", accs, wall)
    traced = None
    if args.trace_steps and not args.skip_aihwkit:
        traced = trace(data, seeds[0], args.trace_steps, lr=lr_eff, out_bound=args.out_bound)
        print("trace:", json.dumps(traced), flush=True)

    print(f"\n{args.dataset} {'-'.join(map(str, task_config(args.dataset).network.sizes))}, "
          f"{len(data.x_train)} training samples, {args.epochs:g} epochs, batch 1, seeds {args.seeds}, "
          f"test set {len(data.x_test)} samples\n")
    print("| implementation | accuracy % (mean ± s.d.) | per seed | wall s (all seeds) |")
    print("|---|---|---|---|")
    for r in rows:
        per = ", ".join(f"{100 * a:.2f}" for a in r["accuracy"])
        print(f"| {r['implementation']} | {_mean_sd(r['accuracy'])} (n={len(r['accuracy'])}) | {per} | {r['wall_s']:.0f} |")
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump({"dataset": args.dataset, "train_samples": len(data.x_train), "epochs": args.epochs,
                       "seeds": seeds, "rows": rows, "trace": traced}, f, indent=1)


if __name__ == "__main__":
    main()
