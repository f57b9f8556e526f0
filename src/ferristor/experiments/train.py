"""The training loop: R replicas (one per seed) trained online in one tensor program.

Each replica draws its own initialisation, shuffling, masks and variability from its seed alone,
so a replica equals the same seed trained by itself, bit for bit. Long runs checkpoint at every
evaluation and every ``checkpoint_every`` epochs, and resume from the last checkpoint when rerun with
the same configuration (fields in ``LOCAL_FIELDS``, such as threads, may differ).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..config_base import to_dict
from ..data import load_dataset
from ..nn.mlp import HybridMLP
from ..rule.rng import STREAM_SHUFFLE
from .config import TrainConfig
from ..atomic import atomic_write
from . import run_folder
from .preflight import check_data
from .results import versions, write_json

EVAL_CHUNK = 2000  # test samples per forward pass during evaluation


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


def epoch_order(seeds: list[int], epoch: int, n: int) -> torch.Tensor:
    """(R, n) sample order of one epoch: a fresh permutation per replica and epoch."""
    perms = [np.random.default_rng([seed, STREAM_SHUFFLE, epoch]).permutation(n) for seed in seeds]
    return torch.from_numpy(np.stack(perms))


@torch.no_grad()
def evaluate(model: HybridMLP, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    correct = torch.zeros(model.replicas, dtype=torch.int64)
    for i in range(0, len(x), EVAL_CHUNK):
        pred = model.predict(x[i:i + EVAL_CHUNK])
        correct += (pred == y[i:i + EVAL_CHUNK]).sum(-1).cpu()
    return (correct.double() / len(x)).tolist()


def build_model(cfg: TrainConfig) -> HybridMLP:
    return HybridMLP(cfg.network, cfg.seeds, mode=cfg.mode, rule=cfg.rule, transfer=cfg.transfer,
                     ledger=cfg.ledger, backend=cfg.backend, device=cfg.device)


@run_folder.claimed  # memory, then --out: created, writable, locked, same config as its checkpoint (fresh=True discards)
def train(cfg: TrainConfig, out_dir: str | Path | None = None, *, progress: bool = True, dataset=None) -> dict:
    """Train, evaluate, and return (and, with ``out_dir``, write) the results dict."""
    set_threads(cfg.threads)
    data = dataset or load_dataset(cfg.dataset, cfg.data_dir)
    check_data(cfg, data)  # labels vs outputs, features, batch ≤ samples; warns when k > the run's samples
    dev = torch.device(cfg.device)
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    x_test, y_test = data.x_test.to(dev), data.y_test.to(dev)
    if cfg.test_limit:
        x_test, y_test = x_test[:cfg.test_limit], y_test[:cfg.test_limit]
    if cfg.network.output == "sigmoid":
        y_train = y_train.float()

    model = build_model(cfg)
    model.reset_parameters()
    n, batch = len(x_train), cfg.batch
    steps_per_epoch = n // batch
    total_steps = max(1, round(cfg.epochs * steps_per_epoch))
    eval_stride = max(1, round(cfg.eval_every * steps_per_epoch))
    eval_steps = {*range(eval_stride, total_steps + 1, eval_stride), total_steps}
    ckpt_steps: set[int] = set()
    if out_dir and cfg.checkpoint_every:
        ckpt_stride = max(1, round(cfg.checkpoint_every * steps_per_epoch))
        ckpt_steps = set(range(ckpt_stride, total_steps, ckpt_stride))
    stops = sorted(eval_steps | ckpt_steps)

    cfg_dict = to_dict(cfg)
    ckpt_path = Path(out_dir) / "checkpoint.pt" if out_dir else None
    step, history, train_time = run_folder.resume(ckpt_path, cfg_dict, model)  # clear errors on a bad checkpoint

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=step, unit="step", desc=f"{cfg.dataset} {cfg.mode} R={len(cfg.seeds)}",
                   dynamic_ncols=True, mininterval=1.0)
    order, order_epoch = None, -1
    ar = torch.arange(batch, device=dev)
    while step < total_steps:
        stop = next(s for s in stops if s > step)
        t0 = time.perf_counter()
        while step < stop:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(cfg.seeds, epoch, n).to(dev), epoch
            if batch == 1:
                idx = order[:, pos]
            else:
                idx = order[:, pos * batch + ar]
            model.train_step(x_train[idx], y_train[idx])
            step += 1
            if bar is not None and step % 200 == 0:
                bar.update(200)
        train_time += time.perf_counter() - t0
        if step in eval_steps:
            acc = evaluate(model, x_test, y_test)
            history.append({"epoch": step / steps_per_epoch, "step": step, "test_accuracy": acc})
            if bar is not None:
                bar.n = step
                bar.set_postfix(acc=f"{100 * float(np.mean(acc)):.2f}%")
                bar.refresh()
        if ckpt_path is not None:
            model.flush_counts()
            state = {"config": cfg_dict, "model": model.state_dict(), "generators": model.generator_states(),
                     "step": step, "history": history, "train_time": train_time}
            with atomic_write(ckpt_path) as f:
                torch.save(state, f)
    if bar is not None:
        bar.close()

    sample_replicas = total_steps * batch * len(cfg.seeds)
    final = history[-1]["test_accuracy"]
    results = {
        "config": cfg_dict,
        "seeds": cfg.seeds,
        "steps": total_steps,
        "samples_per_replica": total_steps * batch,
        "final_test_accuracy": final,
        "final_test_accuracy_mean": float(np.mean(final)),
        "final_test_accuracy_std": float(np.std(final, ddof=1)) if len(final) > 1 else 0.0,
        "history": history,
        "ledger": model.ledger_report(),
        "timing": {"train_seconds": train_time, "sample_replicas": sample_replicas,
                   "sample_replicas_per_second": sample_replicas / train_time if train_time else math.nan,
                   "us_per_sample_replica": 1e6 * train_time / sample_replicas if sample_replicas else math.nan},
        "versions": versions(),
    }
    if out_dir is not None:
        write_json(Path(out_dir) / "results.json", results)
    return results
