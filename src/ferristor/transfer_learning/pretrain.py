"""Pretraining a backbone on the source task with 4-bit LSQ weights (quantisation-aware from the
first step), Adam (lr 1e-4, weight decay 1e-5: the paper's, as issue 9 relays it — digest §6 gives
only the architecture), checkpoints that resume, a progress bar, wall time per epoch.

Folder ``out``: ``checkpoint.pt`` (model, optimizer, position, RNG state; written every
``checkpoint_every`` steps and at each epoch's end), ``backbone.pt`` (the finished backbone,
:func:`ferristor.backbones.save_backbone`) and ``pretrain.json`` (config, per-epoch loss, test
accuracy and wall time, LSQ levels used). A rerun of a finished configuration returns the saved
backbone; an interrupted one resumes; another configuration in the folder is refused.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..atomic import atomic_write
from ..backbones import (Backbone, BackboneSpec, arch_defaults, build_backbone, check_weights_file, load_backbone,
                         save_backbone, weights_sha256)
from ..config_base import check_number, param, param_like
from ..errors import ConfigError, ConfigMismatchError, DataError, DivergedError, FerristorWarning
from ..experiments import run_folder
from ..experiments.results import read_json, versions, write_json
from ..nn.lsq import level_usage
from .images import ImageSet, resolve

STREAM_ORDER = 7
BACKBONE_FILE, RESULTS_FILE = "backbone.pt", "pretrain.json"
# Settings that choose what a pretraining is evaluated on, never what it trains (the test images are
# only ever passed to ``accuracy``, in evaluation mode, drawing no random number): backbones that differ
# in them alone have the same weights (tests/transfer_learning). A caller that wants only the backbone
# (fig6) reuses one evaluated otherwise; they stay recorded in its identity and results.
EVALUATION_ONLY = ("test_limit",)
# The identity's entry for the contents of the weights file a pretraining starts from (its path alone
# is recorded, relative as typed: a file replaced in place would be reused in silence). Identities
# recorded before it have none: they are taken to match, with a warning (``_unfingerprinted``).
WEIGHTS_SHA256 = "weights_sha256"
DEFAULT_DATASET = "fashion-mnist"  # PretrainConfig.dataset's default; pretrain(data=…) names its data instead


@dataclass
class PretrainConfig:
    arch: str = param_like(BackboneSpec, "arch", doc="the backbone: 'mobilenet_v2' or 'lenet'")
    dataset: str = param(DEFAULT_DATASET, source="[I] the paper's source tasks cannot be fetched here (docs/transfer-learning.md)",
                         doc="the source task, as images.resolve reads it (mnist, fashion-mnist[0-4], folder:PATH, …); "
                             "left at its default with pretrain(data=…), the data's own name")
    width: float | None = param_like(BackboneSpec, "width")
    input_size: int | None = param_like(BackboneSpec, "input_size")
    bits: int = param_like(BackboneSpec, "bits")
    fit: str = param("pad", source="[I]", doc="how images meet input_size: 'pad' with the background or 'resize'")
    epochs: float = param(1.0, unit="epoch", source="[I] the CPU budget", doc="pretraining epochs; a fraction runs part of one, rounded to whole batches (at least one): pretrain.json's trained records what was")
    batch: int = param(128, unit="sample", source="[I]", doc="samples per Adam step of the pretraining")
    lr: float = param(1e-4, unit="1", source="[issue 9: the paper's pretraining]", doc="Adam's learning rate")
    weight_decay: float = param(1e-5, unit="1", source="[issue 9: the paper's]", doc="Adam's weight decay")
    seed: int = param(0, source="[I]", doc="seed of the initialisation and the batch order")
    train_limit: int = param(0, unit="sample", source="[I]", doc="the first N training samples (0: all), for quick runs")
    test_limit: int = param(0, unit="sample", source="[I]", doc="the first N test samples (0: all)")
    weights: str | None = param(None, source="[I]", doc="a float state_dict file (torchvision layout) to start from")
    implementation: str = param("auto", source="[I]", doc="'auto', 'ferristor' or 'torchvision' MobileNet-V2 "
                                "(the same keys and computation); not part of the identity")

    def __post_init__(self):
        check_number("epochs", self.epochs, lo=0, lo_open=True, hi=1000)
        check_number("batch", self.batch, lo=1, integer=True)
        check_number("lr", self.lr, lo=0, lo_open=True)
        check_number("weight_decay", self.weight_decay, lo=0)
        check_number("seed", self.seed, lo=0, integer=True)
        check_number("train_limit", self.train_limit, lo=0, integer=True)
        check_number("test_limit", self.test_limit, lo=0, integer=True)
        BackboneSpec(arch=self.arch, width=self.width, input_size=self.input_size, bits=self.bits, fit=self.fit,
                     implementation=self.implementation)  # the backbone's settings, checked before any work
        if self.weights is not None:  # a file missing or holding no state_dict: refused now, not halfway
            self.weights = os.fspath(self.weights)
            check_weights_file(self.weights)

    def resolved(self) -> "PretrainConfig":
        """This config with ``width`` and ``input_size`` as the backbone gets them: None is the
        architecture's default (``backbones.arch_defaults``, as the commands read it). Kept unresolved
        in the fields, so ``dataclasses.replace(cfg, arch=…)`` takes the new architecture's."""
        width, size = arch_defaults(self.arch, self.width, self.input_size)
        return dataclasses.replace(self, width=width, input_size=size)

    def spec(self, data: ImageSet) -> BackboneSpec:
        cfg = self.resolved()
        return BackboneSpec(arch=cfg.arch, num_classes=data.n_classes, image_shape=data.image_shape,
                            input_size=cfg.input_size, width=cfg.width, bits=cfg.bits, fit=cfg.fit,
                            implementation=cfg.implementation)

    def identity(self) -> dict:
        d = dataclasses.asdict(self.resolved())  # resolved: as recorded before None meant the default
        d.pop("implementation")
        if self.weights is not None:  # without weights, the identity is what it was before the entry
            d[WEIGHTS_SHA256] = weights_sha256(self.weights)
        return d


@dataclass
class PretrainResult:
    backbone: Backbone
    results: dict
    path: Path | None
    done_before: bool = False  # read back from a finished folder, not trained now


def batches(cfg: PretrainConfig, n: int) -> tuple[int, int]:
    """(batches an epoch, batches trained) for ``n`` training images: an epoch is the whole batches
    it holds (the last ``n % batch`` images of each epoch's order are left out), and ``epochs`` is
    rounded to whole batches, at least one — so a fraction trains a little more or less than asked
    (results' ``trained`` says what was)."""
    per_epoch = n // cfg.batch
    return per_epoch, max(1, round(cfg.epochs * per_epoch))


def trained(results: dict) -> dict:
    """What a pretraining trained: {'batches', 'epochs', 'batches_per_epoch'}; for results written
    before ``trained`` was recorded, read from the last epoch record (its step and epoch)."""
    if isinstance(results.get("trained"), dict):
        return results["trained"]
    last = (results.get("history") or [{}])[-1]
    step, epoch = last.get("step"), last.get("epoch")
    return {"batches": step, "epochs": epoch, "batches_per_epoch": round(step / epoch) if step and epoch else None}


def rounding_note(cfg: PretrainConfig, results: dict, option: str) -> str | None:
    """A line saying that ``option`` (the epochs as asked) was rounded to whole batches, or None
    where what was trained is what was asked."""
    t = trained(results)
    if t["epochs"] is None or math.isclose(t["epochs"], cfg.epochs, rel_tol=1e-9):
        return None
    return (f"{option} {cfg.epochs:g} is rounded to whole batches: {t['batches']:,} batch{'es' * (t['batches'] != 1)} "
            f"of {cfg.batch} = {t['epochs']:.4g} epoch{'s' * (t['epochs'] != 1)} trained "
            f"({t['batches_per_epoch']:,} batches an epoch)")


def _limited(data: ImageSet, cfg: PretrainConfig) -> ImageSet:
    n, m = cfg.train_limit or len(data.x_train), cfg.test_limit or len(data.x_test)
    return ImageSet(data.name, data.x_train[:n], data.y_train[:n], data.x_test[:m], data.y_test[:m], data.n_classes)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 500) -> float:
    was = model.training
    model.eval()
    correct = sum(int((model(x[i:i + chunk]).argmax(-1) == y[i:i + chunk]).sum()) for i in range(0, len(x), chunk))
    model.train(was)
    return correct / max(1, len(x))


def pretrain(cfg: PretrainConfig, out: str | Path | None = None, *, data: ImageSet | None = None,
             data_dir: str | None = None, progress: bool = True, fresh: bool = False,
             checkpoint_every: int = 100, remedy: str | None = None,
             any_evaluation: bool = False) -> PretrainResult:
    """Train the backbone of ``cfg`` on its source dataset (or ``data``); see the module doc.

    ``remedy``: the way out of a folder holding another configuration's backbone, an unreadable
    pretrain.json or an unusable checkpoint.pt, that the caller offers ({fresh} and {out_dir} name
    its options); by default ``fresh`` or another folder, as ``ferristor pretrain`` offers (``fig6``
    keeps its backbones).

    ``any_evaluation``: a finished backbone that differs only in ``EVALUATION_ONLY`` settings is
    returned with its own results (evaluated as it was), not refused — for a caller that uses the
    weights only (fig6). ``ferristor pretrain`` reports the evaluation asked for, so it refuses one."""
    cfg = cfg.resolved()  # recorded (results' config) as the backbone is built
    raw = data if data is not None else resolve(cfg.dataset, data_dir)
    if data is not None and cfg.dataset == DEFAULT_DATASET and data.name != cfg.dataset:
        cfg = dataclasses.replace(cfg, dataset=data.name)  # the identity names the data used, not the default
    data = _limited(raw, cfg)
    if len(data.x_train) < cfg.batch:
        raise ConfigError("batch", cfg.batch, f"at most the {len(data.x_train)} training images")
    identity = _identity(cfg, data)
    if cfg.weights is not None:  # a file that does not fit this backbone: refused before the folder is made
        with torch.random.fork_rng():
            build_backbone(cfg.spec(data), weights=cfg.weights, quantize=False)
    if out is None:
        return _train(cfg, data, identity, None, progress, checkpoint_every)
    with run_folder.claim(out, fresh=fresh, discard_names=(run_folder.CHECKPOINT, BACKBONE_FILE, RESULTS_FILE)) as folder:
        done = folder / RESULTS_FILE
        if done.exists() and (folder / BACKBONE_FILE).exists():
            saved = _read_results(done, remedy)
            there, now, same_data = saved.get("identity", {}), identity, False
            if _evaluated_otherwise(there, cfg):
                # the saved fingerprint covers the test images it was evaluated on: compared as such
                as_saved = dataclasses.replace(cfg, **{k: there[k] for k in EVALUATION_ONLY})
                evaluated = _identity(as_saved, _limited(raw, as_saved))
                same_data = evaluated[run_folder.DATA_FINGERPRINT] == there.get(run_folder.DATA_FINGERPRINT)
                now = evaluated if any_evaluation else identity
            skip = ((run_folder.DATA_FINGERPRINT,) if same_data else ()) + _as_named_before(there, now)
            diffs = _differences(there, now, skip=skip)
            if not diffs:
                warn_unfingerprinted(there, now, folder)
                return PretrainResult(_load_backbone(folder / BACKBONE_FILE, remedy), saved, folder, done_before=True)
            raise ConfigMismatchError(run_folder.FIELD, str(folder), "a pretrained backbone", diffs,
                                      remedy or run_folder.MISMATCH_HINT)
        return _train(cfg, data, identity, folder, progress, checkpoint_every, remedy)


def _identity(cfg: PretrainConfig, data: ImageSet) -> dict:
    """What a pretraining's results are kept under: its settings and the data it read (limited)."""
    return {**cfg.identity(), run_folder.DATA_FINGERPRINT: data.fingerprint()}


def _as_named_before(there: dict, now: dict) -> tuple[str, ...]:
    """('dataset',) where ``there`` was recorded before the identity named the ``data`` given (it held
    the default name, DEFAULT_DATASET) and holds the same data (fingerprint): the same pretraining."""
    same = there.get(run_folder.DATA_FINGERPRINT) == now.get(run_folder.DATA_FINGERPRINT)
    return ("dataset",) if same and there.get("dataset") == DEFAULT_DATASET != now.get("dataset") else ()


def _evaluated_otherwise(saved: dict, cfg: PretrainConfig) -> bool:
    """Whether a saved identity differs from ``cfg`` in EVALUATION_ONLY settings, each a valid one."""
    ok = all(isinstance(saved.get(k), int) and not isinstance(saved[k], bool) and saved[k] >= 0
             for k in EVALUATION_ONLY)
    return ok and any(saved[k] != getattr(cfg, k) for k in EVALUATION_ONLY)


def saved_differences(cfg: PretrainConfig, out: str | Path, remedy: str | None = None,
                      any_evaluation: bool = False) -> list[tuple]:
    """The settings in which the finished backbone in ``out`` was pretrained otherwise than ``cfg``
    asks, as (name, there, now); [] where there is none or it matches. A check before any work (its
    data are compared once loaded, by :func:`pretrain`); an unreadable pretrain.json is a DataError.
    ``any_evaluation``: as :func:`pretrain`'s, EVALUATION_ONLY settings are not differences."""
    folder = Path(out)
    done = folder / RESULTS_FILE
    if not (done.exists() and (folder / BACKBONE_FILE).exists()):
        return []
    saved = _read_results(done, remedy).get("identity", {})
    skip = EVALUATION_ONLY if any_evaluation and _evaluated_otherwise(saved, cfg) else ()
    return _differences(saved, cfg.identity(), skip)


def _differences(there: dict, now: dict, skip=()) -> list[tuple]:
    """(name, there, now) for each setting of ``now`` (compared as JSON reads it back) that ``there``,
    a saved identity, holds otherwise, but those of ``skip``. Other contents of one weights file are a
    difference in ``weights`` (the option that names the file); ``there`` without their fingerprint
    (recorded before it was) is no difference (:func:`warn_unfingerprinted` says so)."""
    now = json.loads(json.dumps(now))
    diffs = [(k, there.get(k), v) for k, v in now.items() if there.get(k) != v and k not in skip and k != WEIGHTS_SHA256]
    old, new = there.get(WEIGHTS_SHA256), now.get(WEIGHTS_SHA256)
    if old is not None and old != new and not any(k == "weights" for k, _, _ in diffs):
        diffs.append(("weights", _contents(old), _contents(new)))
    return diffs


class _Shown(str):
    """A text a ConfigMismatchError shows as it is (not quoted as a value)."""

    def __repr__(self) -> str:
        return str(self)


def _contents(sha: str | None) -> str:
    return _Shown("no file" if sha is None else f"contents sha256 {str(sha)[:12]}")


def unfingerprinted(there: dict, now: dict) -> bool:
    """Whether ``there``, an identity recorded before the weights file's contents were, is compared with
    ``now`` (which has them) on the path alone."""
    return isinstance(there, dict) and WEIGHTS_SHA256 in now and WEIGHTS_SHA256 not in there


def warn_unfingerprinted(there: dict, now: dict, where, what: str = "a backbone") -> None:
    """Where ``there`` predates the fingerprint of the weights file: accepted as before (the same path),
    but said, since a file changed since cannot be told from the same one."""
    if unfingerprinted(there, now):
        warnings.warn(FerristorWarning(
            f"{where} holds {what} pretrained from the weights file {now.get('weights')} before ferristor recorded "
            f"a weights file's contents: reused on the assumption that the file is unchanged since (pretrain anew "
            f"to be sure)"), stacklevel=3)


def _read_results(path: Path, remedy: str | None) -> dict:
    """A finished pretraining's pretrain.json, or a DataError naming it and the way out."""
    try:
        saved = read_json(path)
        if not isinstance(saved, dict) or not isinstance(saved.get("identity", {}), dict):
            raise TypeError("not a pretraining's results: no identity dict in it")
    except (OSError, ValueError, TypeError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        why = (str(e).strip().splitlines() or [""])[0][:160]
        raise DataError(f"{path} is unreadable ({type(e).__name__}: {why}); {_way_out(remedy)}") from None
    return saved


def _load_backbone(path: Path, remedy: str | None) -> Backbone:
    """A finished pretraining's backbone.pt, or one DataError naming it and the way out (torch's own
    text of a cut zip file is long and says nothing of which folder to delete)."""
    try:
        return load_backbone(path)
    except (DataError, ConfigError, KeyError, TypeError, ValueError, RuntimeError):
        raise DataError(f"{path} is not a usable backbone (truncated, corrupt or not written by ferristor "
                        f"pretrain); {_way_out(remedy)}") from None


def _way_out(remedy: str | None) -> str:
    """What to do about an unusable file in the folder: ``remedy`` in the CLI's names, or --fresh."""
    return run_folder.FRESH_HINT if remedy is None else remedy.format_map(ConfigMismatchError.CLI_NAMES)


# what run_folder.load_checkpoint's DataError ends with: ``ferristor pretrain``'s way out, not fig6's
_CHECKPOINT_ADVICE = f" Delete it, or {run_folder.FRESH_HINT}."


def _unusable(path: Path, what: str, remedy: str | None) -> DataError:
    if remedy is None:
        return DataError(f"{path} is not a usable checkpoint: {what}.{_CHECKPOINT_ADVICE}")
    return DataError(f"{path} is not a usable checkpoint: {what}; {_way_out(remedy)}")


def _load_checkpoint(path: Path, remedy: str | None) -> dict:
    """``run_folder.load_checkpoint``, whose DataError advises deleting the file or --fresh: with a
    caller's ``remedy`` (``fig6``, whose --fresh keeps backbones) the remedy is given instead."""
    try:
        return run_folder.load_checkpoint(path)
    except DataError as e:
        if remedy is None:
            raise
        text = str(e)
        head = text[:-len(_CHECKPOINT_ADVICE)] if text.endswith(_CHECKPOINT_ADVICE) else text
        raise DataError(f"{head.rstrip('.')}; {_way_out(remedy)}") from None


def _warn_other_threads(folder: Path, saved: int | None) -> None:
    """torch's CPU kernels (a convolution's weight gradient, say) split their sums over the threads, so
    a pretraining's bits depend on its thread count (measured: 1 and 2 threads give other backbones).
    Continuing with another count is allowed, as where a run executes is not its identity, but its
    backbone then equals neither count's run from the start: say so."""
    now = torch.get_num_threads()
    if saved is not None and saved != now:
        warnings.warn(FerristorWarning(
            f"{folder}: continuing on {now} thread(s) a pretraining checkpointed on {saved}: torch's kernels sum "
            f"in another order at another thread count, so the backbone will equal neither's run from the start "
            f"(--threads {saved} keeps it reproducible)"), stacklevel=3)


def _train(cfg, data, identity, folder, progress, checkpoint_every, remedy=None) -> PretrainResult:
    torch.manual_seed(cfg.seed)
    model = build_backbone(cfg.spec(data), weights=cfg.weights)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(data.x_train)
    per_epoch, total = batches(cfg, n)
    step, history, epoch_time, loss_sum = 0, [], 0.0, 0.0
    ckpt = folder / run_folder.CHECKPOINT if folder is not None else None
    if ckpt is not None and ckpt.exists():
        state = _load_checkpoint(ckpt, remedy)
        there = state["config"] if isinstance(state["config"], dict) else {}
        diffs = _differences(there, identity, _as_named_before(there, identity))
        if diffs or set(there) - set(identity):
            raise ConfigMismatchError(run_folder.FIELD, str(folder), "a checkpoint", diffs,
                                      remedy or run_folder.MISMATCH_HINT)
        warn_unfingerprinted(there, identity, folder, "an unfinished pretraining")
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            step, history = state["step"], state["history"]
            epoch_time, loss_sum = float(state["epoch_time"]), float(state["loss_sum"])
            torch.set_rng_state(state["rng"])
            _warn_other_threads(folder, state.get("threads"))
        except (KeyError, RuntimeError, ValueError, TypeError) as e:  # a pretraining's own fields or states
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise _unusable(ckpt, f"its state does not fit this pretraining ({type(e).__name__}: {first})",
                            remedy) from None
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=step, unit="batch", dynamic_ncols=True, mininterval=1.0,
                   desc=f"pretrain {cfg.arch} on {data.name}")
    model.train()
    order_epoch, order = -1, None
    while step < total:
        epoch, pos = divmod(step, per_epoch)
        if epoch != order_epoch:
            order = torch.from_numpy(np.random.default_rng([cfg.seed, STREAM_ORDER, epoch]).permutation(n))
            order_epoch = epoch
        t0 = time.perf_counter()
        idx = order[pos * cfg.batch:(pos + 1) * cfg.batch]
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise DivergedError("lr", cfg.lr, "step", step)
        epoch_time += time.perf_counter() - t0
        loss_sum += loss.item()
        step += 1
        if bar is not None:
            bar.update(1)
        end_of_epoch = step % per_epoch == 0 or step == total
        if end_of_epoch:
            steps_in = step - (epoch * per_epoch)
            record = {"epoch": step / per_epoch, "step": step, "train_loss": loss_sum / max(1, steps_in),
                      "wall_seconds": epoch_time, "threads": torch.get_num_threads()}
            if len(data.x_test):
                record["test_accuracy"] = accuracy(model, data.x_test, data.y_test)
            history.append(record)
            if bar is not None:
                bar.set_postfix(acc=f"{100 * record.get('test_accuracy', float('nan')):.2f}%")
            epoch_time, loss_sum = 0.0, 0.0
        if ckpt is not None and (end_of_epoch or step % checkpoint_every == 0) and step < total:
            with atomic_write(ckpt) as f:
                torch.save({"config": identity, "model": model.state_dict(), "optimizer": opt.state_dict(),
                            "step": step, "history": history, "train_time": 0.0, "epoch_time": epoch_time,
                            "loss_sum": loss_sum, "rng": torch.get_rng_state(), "threads": torch.get_num_threads()}, f)
    if bar is not None:
        bar.close()
    model.freeze()
    usage = level_usage(model)
    results = {"identity": identity, "config": dataclasses.asdict(cfg), "dataset": data.name,
               "trained": {"batches": total, "epochs": total / per_epoch, "batches_per_epoch": per_epoch},
               "backbone_checksum": model.checksum(), "implementation": type(model.net).__module__,
               "history": history, "final_test_accuracy": history[-1].get("test_accuracy"),
               "levels_used": {k: v["levels_used"] for k, v in usage.items()}, "versions": versions()}
    if folder is not None:
        save_backbone(model, folder / BACKBONE_FILE, extra={"pretrain": {k: results[k] for k in ("config", "dataset")}})
        write_json(folder / RESULTS_FILE, results)
        (folder / run_folder.CHECKPOINT).unlink(missing_ok=True)
    return PretrainResult(model, results, folder)
