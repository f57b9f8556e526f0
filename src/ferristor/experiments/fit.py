"""``fit``: train any model with hybrid layers on your own data, online or in mini-batches.

This is the training loop every ferristor run goes through (``ferristor train`` builds the paper's
network and calls it), written as the plain PyTorch loop anyone would write::

    out = model(x); loss = loss_fn(out, y); optimizer.zero_grad(); loss.backward(); optimizer.step()

plus what a long experiment needs: one shuffled order per replica (chip) and epoch, drawn from its
seed; evaluations; checkpoints (model + optimizer + position) that resume bit for bit; a results
dict with the dataset's name and fingerprint, accuracy history, the ledger and timings.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write
from ..compile_clock import CompileClock
from ..config_base import check_number, to_dict
from ..data.registry import Dataset
from ..data.validate import check_fits, check_outputs, numeric_tensor
from ..errors import (ConfigError, ConfigMismatchError, DataError, DivergedError, FerristorWarning,
                      NonFiniteGradientError)
from . import fast_step, run_folder
from ..nn.hybrid import HybridModule
from ..rule.streams import STREAM_SHUFFLE
from ..nn.ledger import ledger as model_ledger
from .results import code_version, versions, write_json

EVAL_CHUNK = 2000  # the default eval_batch: test samples evaluated together (TrainConfig.eval_batch)
STREAM_VALIDATION = 5


def set_threads(n: int) -> None:
    """Threads for torch and the numba kernels (per-sample loops run best at 1–2 per process): at
    most the CPUs this process may use, since an oversubscribed core slows a per-sample loop ~10×."""
    from ..cpus import available_cpus
    check_number("threads", n, lo=1, hi=available_cpus(), integer=True)
    torch.set_num_threads(n)
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


@dataclass
class FitResult:
    model: nn.Module
    results: dict
    ledger: list | None  # one report per replica (chip); None for models without hybrid layers in a device mode


def _advance(bar, n: int) -> None:
    """The progress bar n steps on, its 'starting' note gone once steps are done."""
    if bar.postfix and bar.postfix.startswith("starting"):
        bar.set_postfix_str("", refresh=False)
    bar.update(n)


def hybrid_layers(model: nn.Module) -> list[HybridModule]:
    return [m for m in model.modules() if isinstance(m, HybridModule)]


def model_replicas(model: nn.Module) -> int | None:
    """R if the model's hybrid layers hold R replicas (inputs (R, B, …)), None for one chip."""
    counts = {m.replicas for m in hybrid_layers(model)}
    if len(counts) > 1:
        raise ConfigError("replicas", sorted(counts, key=str), "the same number of replicas in every hybrid layer")
    return counts.pop() if counts else None


def epoch_order(seeds: list[int], epoch: int, n: int) -> torch.Tensor:
    """(R, n) sample order of one epoch: a fresh permutation per replica and epoch."""
    perms = [np.random.default_rng([seed, STREAM_SHUFFLE, epoch]).permutation(n) for seed in seeds]
    return torch.from_numpy(np.stack(perms))


def as_dataset(data, test=None, name: str | None = None) -> Dataset:
    """A ferristor Dataset from one: (x, y) tensors or arrays, a list of (x, y) samples, a torch
    Dataset of (x, y) pairs, or a Dataset. What cannot become one is refused here, before any work:
    a ConfigError for another kind of argument, a DataError naming the sample or part that is wrong."""
    if isinstance(data, Dataset):
        if test is not None:
            raise ConfigError("test_data", type(test).__name__, "None with a ferristor Dataset (it carries its own test split)")
        return data
    x, y = _tensors(data, "train_data")
    if test is None:
        warnings.warn(FerristorWarning("no test_data: accuracy is measured on the training set"), stacklevel=4)
        xt, yt = x, y
    else:
        xt, yt = _tensors(test, "test_data")
    n_classes = int(max(int(y.max()) if len(y) else 0, int(yt.max()) if len(yt) else 0)) + 1
    return Dataset(name or "custom", x, y, xt, yt, n_classes)


_ACCEPTED = ("(x, y) tensors or numpy arrays, a list of (x, y) samples, a torch Dataset of (x, y) pairs "
             "or a ferristor Dataset")


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float, str, bytes, np.generic)) or (isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim == 0)


def _samples_form(data) -> bool:
    """Whether ``data`` is a sequence of samples (a torch Dataset, or a list whose items are (x, label)
    pairs or dicts) rather than the (x, y) pair of tensors: a list [x, y] holds two arrays, and its
    second item (the labels) is never a scalar, while a sample's second item, its label, is one."""
    if isinstance(data, torch.utils.data.Dataset):
        return True
    if not isinstance(data, list) or not data:
        return False
    first = data[0]
    return isinstance(first, dict) or (len(data) != 2 and isinstance(first, (tuple, list))) or (
        isinstance(first, (tuple, list)) and len(first) >= 2 and _is_scalar(first[1]))


def _described(item) -> str:
    if isinstance(item, dict):
        return f"a dict with keys {sorted(map(str, item))[:6]}"
    if isinstance(item, (tuple, list)):
        return f"a {type(item).__name__} of {len(item)} items ({', '.join(type(v).__name__ for v in item[:6])})"
    return f"a {type(item).__name__}"


def _tensors(data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x flattened to (N, features), y) from one split as the user gave it (``what``: its parameter)."""
    if isinstance(data, torch.utils.data.DataLoader):
        raise ConfigError(what, "a DataLoader", "its dataset (loader.dataset): fit draws the sample order from the "
                          "seeds and batches it itself (batch=…), so that a run resumes and replays bit for bit")
    if isinstance(data, torch.utils.data.IterableDataset):
        raise ConfigError(what, f"an IterableDataset ({type(data).__name__})", "a map-style torch Dataset "
                          "(__len__ and __getitem__): fit shuffles the samples by index, from the seeds")
    if _samples_form(data):
        x, y = _stacked_samples(data, what)
    elif isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ConfigError(what, f"a {type(data).__name__} of {len(data)} items", _ACCEPTED)
        x = numeric_tensor(data[0], f"{what} inputs (x)", labels=False)
        y = _labels(data[1], f"{what} labels (y)")
    else:
        raise ConfigError(what, type(data).__name__, _ACCEPTED)
    return (x.reshape(len(x), -1) if x.dim() > 2 else x), y


def _labels(value, what: str) -> torch.Tensor:
    """Labels as ``numeric_tensor`` reads them, but for bools: a Dataset casts them to 0/1, and they had
    trained silently so, though fit's labels are never converted from anything else (docs/pytorch.md)
    and ferristor's cross_entropy refuses bool targets."""
    y = numeric_tensor(value, what, labels=True)
    if y.dtype == torch.bool:
        raise DataError(f"{what} has dtype bool: expected integer class labels 0…n-1; if False and True are classes "
                        "0 and 1, convert them with y.astype(int) (numpy) or y.long() (torch)")
    return y


def _stacked_samples(data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs and labels of a map-style dataset (or a list of samples), each sample checked."""
    try:
        n = len(data)
    except TypeError:
        raise ConfigError(what, f"a {type(data).__name__} without a length", "a map-style torch Dataset "
                          "(__len__ and __getitem__) of (x, y) pairs") from None
    if not n:
        raise DataError(f"{what} is empty: expected at least one (x, y) sample")
    xs, ys = [], []
    for i in range(n):
        item = data[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{what}[{i}] is {_described(item)}, expected an (x, y) pair (input, class label): "
                            "fit learns from inputs and labels only; give it a Dataset whose items are (x, y)")
        xs.append(numeric_tensor(item[0], f"{what}[{i}] input", labels=False))
        ys.append(_labels(item[1], f"{what}[{i}] label"))
    for part, ts in (("an input", xs), ("a label", ys)):
        shape = ts[0].shape
        i = next((i for i, t in enumerate(ts) if t.shape != shape), None)
        if i is not None:
            raise DataError(f"{what}[{i}] has {part} of shape {tuple(ts[i].shape)} but {what}[0] has {tuple(shape)}: "
                            "every sample must have one shape (pad or crop them first)")
    return torch.stack(xs), torch.stack(ys)


# what a model refusing an input's shape raises: a hybrid layer's ConfigError, torch's RuntimeError
_SHAPE_ERRORS = (ValueError, RuntimeError, IndexError)


def _input_shape(data) -> tuple[int, ...] | None:
    """The shape of the inputs the user passed (before ``_tensors`` flattened them); None for a ferristor Dataset."""
    if _samples_form(data):
        return (len(data), *numeric_tensor(data[0][0], "", labels=False).shape)
    if isinstance(data, (tuple, list)):
        return tuple(numeric_tensor(data[0], "", labels=False).shape)
    return None


def _raise_if_flattened(train_data, x: torch.Tensor, replicas: int | None, error: Exception) -> None:
    """When a model refused its first batch of inputs that ``fit`` flattened from images (or any sample
    of more than one axis), a ConfigError naming the shape the user passed and the way back to it:
    the shape in ``error`` is one the user never made. Returns when the inputs were vectors already."""
    shape = _input_shape(train_data)
    if shape is None or len(shape) <= 2:
        return
    sample = shape[1:]
    raise ConfigError("train_data x shape", shape, reason=(
        f"fit flattens each sample to a vector, so the model got a batch of shape {tuple(x.shape)} and refused it "
        f"({type(error).__name__}: {error}); a model taking samples of shape {sample} starts with "
        f"nn.Unflatten({2 if replicas else 1}, {sample}) (docs/pytorch.md, 'fit')")) from error


def fingerprint(data: Dataset) -> str:
    """A hash of the dataset's contents (inputs and labels of both splits): two runs share it only
    if they trained and tested on the same numbers."""
    h = hashlib.blake2b(digest_size=16)
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def default_loss(n_outputs: int) -> Callable:
    """Per-replica mean loss over the batch, summed over replicas (each chip's gradient is its own):
    softmax + cross-entropy, or sigmoid + binary cross-entropy for one output (digest §4) — ferristor's
    deterministic versions (``nn.functional``)."""
    from ..nn import functional as nnF
    return nnF.binary_cross_entropy_with_logits if n_outputs == 1 else nnF.cross_entropy


def eval_batches(n: int, batch: int) -> list[tuple[int, int]]:
    """The (start, stop) of each evaluated batch of n samples: ``batch`` each, the rest last — joined
    to the batch before when it is a single sample."""
    bounds = [(i, min(i + batch, n)) for i in range(0, n, batch)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, replicas: int | None,
             batch: int = EVAL_CHUNK) -> list[float]:
    """Accuracy per replica on (x, y), ``batch`` samples per forward pass, in eval mode. The batch is
    part of the result where a BatchNorm normalises each test sample with its batch's statistics; a
    last batch of a single sample joins the one before (over one sample BatchNorm is undefined)."""
    was_training = model.training
    model.eval()
    n_rep = replicas or 1
    correct = torch.zeros(n_rep, dtype=torch.int64)
    for i, j in eval_batches(len(x), batch):
        xb = x[i:j]
        out = model(xb.expand(n_rep, *xb.shape) if replicas else xb)
        pred = out.argmax(-1) if out.shape[-1] > 1 else (out[..., 0] > 0).long()
        correct += (pred == y[i:j]).reshape(n_rep, -1).sum(-1).cpu()
    model.train(was_training)
    return (correct.double() / max(len(x), 1)).tolist()


def _initial_state_hash(model: nn.Module) -> str:
    # the hybrid layers' settings buffers repeat their config and name (in the model's repr): left out,
    # so runs checkpointed before the layers carried them keep their identity
    settings = {f"{name}.{b}".lstrip(".") for name, m in model.named_modules() if isinstance(m, HybridModule)
                for b in ("hidden_lsb", "settings", "stream_settings")}
    h = hashlib.blake2b(digest_size=16)
    for k, v in model.state_dict().items():
        if k in settings:
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fit(model: nn.Module, train_data, test_data=None, *, out: str | Path | None = None, fresh: bool = False,
        **options) -> FitResult:
    """Train ``model`` (any ``nn.Module`` with hybrid layers) and return it with its results and ledger.

    ``train_data``/``test_data``: (x, y) tensors, a torch Dataset of (x, y) pairs, or a ferristor
    ``Dataset`` (holding both splits; without ``test_data`` the training set is evaluated, with a
    warning). Inputs are flattened to (N, features): a model taking images starts with ``nn.Unflatten``
    (one that refuses its first flattened batch gets a ConfigError naming the shape passed and the ``nn.Unflatten``).
    ``out``: a folder for ``results.json`` and ``checkpoint.pt`` — created, checked and locked before
    any work; rerunning the same call resumes from the checkpoint, bit for bit (``fresh=True`` discards it).
    Options (see :func:`run_fit`): epochs, batch, optimizer or lr/p/k/rounding, loss, seed, eval_every,
    checkpoint_every, test_limit, eval_batch, validation, validation_seed, progress, config, name.
    """
    if out is None:
        return run_fit(model, train_data, test_data, **options)
    run_folder.refuse_other_command(out)  # a sweep's or reproduce's folder: results of two commands mixed
    with run_folder.claim(out, fresh=fresh):
        return run_fit(model, train_data, test_data, out=out, **options)


def run_fit(model: nn.Module, train_data, test_data=None, *, epochs: float = 1.0, batch: int = 1,
        optimizer: torch.optim.Optimizer | None = None, lr: float | None = None, p: float | None = None,
        k: int | None = None, rounding: str | None = None, loss: Callable | None = None, seed: int | None = None,
        eval_every: float = 1.0, checkpoint_every: float = 1.0, test_limit: int = 0, eval_batch: int = EVAL_CHUNK,
        validation: float = 0.0,
        validation_seed: int = 0, out: str | Path | None = None, progress: bool = True,
        config: dict | None = None, name: str | None = None, warn_k: bool = True, config_builds_model: bool = False,
        on_eval=None, on_checkpoint=None, resume_state: dict | None = None,
        extra_results: Callable[[nn.Module], dict] | None = None) -> FitResult:
    """:func:`fit` in an output folder already claimed (``ferristor train`` claims it with its config).

    ``optimizer``: default ``HybridSGD(lr, p, k, rounding)``, each of them by default HybridSGD's
    (lr=0.1, p=0.2, k=100, rounding='stochastic'); beside a given optimizer they are refused (its
    param_groups hold its own).
    ``loss``: default softmax + cross-entropy (one output: sigmoid + binary cross-entropy), a mean
    over each replica's batch. ``seed``: the sample order of a one-chip model (default: its first
    hybrid layer's seed); replicated models shuffle per replica with the replicas' seeds.
    ``validation``: a fraction of the training set held out (seeded by ``validation_seed``, the same
    for every replica) and evaluated beside the test set — choose hyperparameters on it.
    ``eval_batch``: samples per forward pass when evaluating (validation and test); a BatchNorm
    normalises each sample with its batch's statistics, so there it is part of the result.
    ``config``: a JSON-able description of the run recorded in the results (``ferristor train`` passes its config).
    A run resumes from ``out`` only when what it trains is the same: the model, optimizer and settings
    fit sees, besides ``config`` — unless ``config_builds_model`` (``ferristor train``: the config the
    model and optimizer were built from, which then says all).
    Hooks of a sweep driver (``ferristor.sweeps``), none needing ``out``: ``on_eval(record)`` gets each
    history record as it is measured; ``on_checkpoint(state)`` each checkpoint's state (what
    ``checkpoint.pt`` holds); ``resume_state`` is such a state to resume from (ignored when it belongs
    to another run). ``extra_results(model)``: more fields of the results, merged in before the one
    write of ``results.json``, so the file is complete or absent.
    """
    from ..optim import HybridSGD

    rule = {key: v for key, v in (("lr", lr), ("p", p), ("k", k), ("rounding", rounding)) if v is not None}
    if optimizer is not None and rule:
        _refuse_rule_beside(optimizer, rule)
    data = as_dataset(train_data, test_data, name)
    replicas = model_replicas(model)
    n_rep = replicas or 1
    layers = hybrid_layers(model)
    n_out = _output_size(model, data)
    spec = getattr(model, "spec", None)
    if spec is not None:
        check_fits(data, spec.sizes, spec.output)
    else:
        check_outputs(data, n_out)
    for arg, v, lo in (("epochs", epochs, 0), ("eval_every", eval_every, 0)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > lo or not math.isfinite(v):
            raise ConfigError(arg, v, f"a number > {lo}")
    _check_validation(validation, len(data.x_train))
    check_number("test_limit", test_limit, lo=0, integer=True)  # 0: the whole test set
    check_number("eval_batch", eval_batch, lo=2 if _has_batchnorm(model) else 1, integer=True)
    check_number("checkpoint_every", checkpoint_every, lo=0)  # 0: no checkpoints
    check_number("validation_seed", validation_seed, lo=0, integer=True)
    if seed is not None:
        check_number("seed", seed, lo=0, integer=True)
    if config is not None and not isinstance(config, dict):
        raise ConfigError("config", type(config).__name__, "a dict describing the run (JSON-able), recorded as "
                          "results['config'] in place of the one fit records; or None")
    if not layers:
        warnings.warn(FerristorWarning(f"{type(model).__name__} has no hybrid layers: it trains in float, with plain "
                                       "SGD and no device counts (ferristor.convert puts its layers on hybrid synapses)"),
                      stacklevel=3)
    x_train, y_train, x_val, y_val = _split(data, validation, validation_seed)
    warn_if_one_class(y_train, n_out, validation)
    n = len(x_train)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= n:
        raise ConfigError("batch", batch, f"an integer in [1, {n}] (the training samples)")
    x_test, y_test = data.x_test, data.y_test
    if test_limit:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    built = optimizer is None
    optimizer = optimizer or HybridSGD(model.parameters(), **rule)  # HybridSGD's defaults for what is not given
    loss_fn = loss or default_loss(n_out)
    # ferristor's losses are told the leading axis is the chips (else they warn that they read it so)
    loss_kw = {"replicas": replicas} if replicas and (loss is None or getattr(loss, "takes_replicas", False)) else {}
    order_seeds = ([int(s) for s in layers[0].seeds.tolist()] if replicas else
                   [seed if seed is not None else (int(layers[0].seeds[0]) if layers else 0)])

    steps_per_epoch = n // batch
    total_steps = max(1, round(epochs * steps_per_epoch))
    if warn_k:
        warn_if_no_transfer(optimizer, total_steps * batch)
    eval_stride = max(1, round(eval_every * steps_per_epoch))
    eval_steps = {*range(eval_stride, total_steps + 1, eval_stride), total_steps}
    ckpt_steps: set[int] = set()
    if (out is not None or on_checkpoint is not None) and checkpoint_every:
        stride = max(1, round(checkpoint_every * steps_per_epoch))
        ckpt_steps = set(range(stride, total_steps, stride))
    stops = sorted(eval_steps | ckpt_steps)

    def own() -> dict:  # fit's description of the run: a hash of the model's state, made only where used
        return _fit_identity(model, optimizer, loss, epochs, batch, seed, eval_every, validation, validation_seed,
                             test_limit, eval_batch)
    identity = dict(config) if config is not None else own()
    ckpt_path = Path(out) / run_folder.CHECKPOINT if out is not None else None
    # another model under the same config must not resume; a run checkpointed before fit's own
    # description joined a given config resumes as it was identified then
    if config is not None and not config_builds_model and not _identified_by_config_alone(ckpt_path, resume_state):
        identity["fit"] = own()
    data_print = fingerprint(data)  # a hash of every sample: once (~0.5 s at MNIST's size)
    identity[run_folder.DATA_FINGERPRINT] = data_print
    if resume_state is not None and not run_folder.config_differences(resume_state["config"], identity):
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        step, history, train_time = resume_state["step"], list(resume_state["history"]), float(resume_state["train_time"])
        compile_time = float(resume_state.get("compile_time", 0.0))
        run_folder.restore_torch_rng(resume_state)
    else:
        try:
            step, history, train_time, compile_time = run_folder.resume(ckpt_path, identity, model, optimizer)
        except ConfigMismatchError as e:
            raise _default_loss_named(e, default_loss(n_out).__name__) from None

    trains = step < total_steps  # False: a finished run reported again (other ledger costs), nothing trained
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, mininterval=1.0,
                   desc=f"{data.name} R={n_rep}")
        # the first steps of a first run on a machine wait ~20 s for numba: say so rather than sit at 0
        bar.set_postfix_str("starting; a first run compiles kernels (~20 s)")
    dev = next(iter(model.parameters())).device
    x_train, y_train = x_train.to(dev), y_train.to(dev)
    order, order_epoch = None, -1
    ar = torch.arange(batch, device=dev)
    fast = None  # decided on the first batch
    runner = x_np = y_np = None  # the compiled chunks and their data, set with fast on the first batch
    first_forward = True  # a model refusing its first batch may want the samples unflattened
    model.train()
    # numba's compile time (a first run on a machine) is timed apart: the speed is the steady state's
    with CompileClock() as clock:
        while step < total_steps:
            stop = next(s for s in stops if s > step)
            t0, c0 = time.perf_counter(), clock.seconds
            while step < stop:
                epoch, pos = divmod(step, steps_per_epoch)
                if epoch != order_epoch:
                    order, order_epoch = epoch_order(order_seeds, epoch, n).to(dev), epoch
                    order_np = order.cpu().numpy() if fast else None
                if fast:  # the plain loop's operations in compiled chunks (on the CPU bit for bit; on a GPU graphed)
                    n_run = min(stop - step, steps_per_epoch - pos)
                    rows = order_np[:, pos * batch:(pos + n_run) * batch]
                    loss_value = fast_step.run(runner, optimizer, x_np, y_np, rows, batch)
                    step += n_run
                    if bar is not None:
                        _advance(bar, n_run)
                    continue
                idx = order[:, pos * batch + ar]  # (R, B)
                x, y = x_train[idx], y_train[idx]
                if not replicas:
                    x, y = x[0], y[0]
                if fast is None:  # the model itself, or the HybridMLP view of a plain Sequential MLP
                    try:
                        runner = fast_step.compiled_model(model)
                        fast = runner is not None and fast_step.applies(runner, optimizer, loss is None, x)
                        if fast:  # the compiled chunks take the data as numpy arrays, or on a GPU as device tensors
                            runner.layers[0].check_input(x)  # the model's own first check, which they skip
                    except _SHAPE_ERRORS as e:
                        _raise_if_flattened(train_data, x, replicas, e)
                        raise
                    if fast:
                        on_gpu = x_train.is_cuda
                        x_np = x_train if on_gpu else x_train.numpy()
                        y_np = y_train if on_gpu else y_train.numpy()
                        order_np = order.cpu().numpy()
                        continue
                try:
                    out_ = model(x)
                except _SHAPE_ERRORS as e:
                    if first_forward:
                        _raise_if_flattened(train_data, x, replicas, e)
                    raise
                first_forward = False
                loss_value = loss_fn(out_, y, **loss_kw)
                optimizer.zero_grad()
                loss_value.backward()
                try:
                    optimizer.step()
                except NonFiniteGradientError:  # said as what fit knows: its lr is too large
                    raise DivergedError("lr", optimizer.param_groups[0]["lr"], "step", step + 1) from None
                step += 1
                if bar is not None and step % 200 == 0:
                    _advance(bar, 200)
            train_time += time.perf_counter() - t0
            compile_time += clock.seconds - c0
            if not math.isfinite(loss_value.item() if torch.is_tensor(loss_value) else float(loss_value)):
                raise DivergedError("lr", optimizer.param_groups[0]["lr"], "step", step)
            if step in eval_steps:
                record = {"epoch": step / steps_per_epoch, "step": step,
                          "test_accuracy": evaluate(model, x_test.to(dev), y_test.to(dev), replicas, eval_batch)}
                if validation:
                    record["val_accuracy"] = evaluate(model, x_val.to(dev), y_val.to(dev), replicas, eval_batch)
                history.append(record)
                if on_eval is not None:
                    on_eval(record)
                if bar is not None:
                    bar.n = step
                    bar.set_postfix(acc=f"{100 * float(np.mean(record['test_accuracy'])):.2f}%")
                    bar.refresh()
            if ckpt_path is not None or on_checkpoint is not None:
                state = {"config": identity, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "step": step, "history": history, "train_time": train_time,
                         "compile_time": compile_time, **run_folder.torch_rng_state()}
                if ckpt_path is not None:
                    with atomic_write(ckpt_path) as f:
                        torch.save(state, f)
                if on_checkpoint is not None:
                    on_checkpoint(state)
    if bar is not None:
        bar.close()

    ledger = model_ledger(model)
    recorded = config if config is not None else run_config(
        model, optimizer, data, data_print, loss=loss, epochs=epochs, batch=batch, seeds=order_seeds, seed=seed,
        eval_every=eval_every, checkpoint_every=checkpoint_every, test_limit=test_limit, eval_batch=eval_batch,
        validation=validation, validation_seed=validation_seed, device=str(dev))
    results = _results(data, data_print, recorded, history, ledger, total_steps, batch, n_rep, train_time,
                       compile_time, order_seeds, validation)
    if not trains and out is not None:
        _as_trained(results, Path(out), recorded, config)
    if extra_results is not None:
        results.update(extra_results(model))
    if out is not None:
        write_json(Path(out) / "results.json", results)
    if built:  # the model goes back to the caller, who may train it with any optimizer (.grad as usual)
        optimizer.release()
    return FitResult(model, results, ledger)


def _as_trained(results: dict, out: Path, recorded: dict, config: dict | None) -> None:
    """A finished run reported again without training (other ledger costs, ratings or operations per
    event: ``run_folder.report_only``) keeps in ``results`` the settings, versions and code version it
    trained with — its previous results', else its checkpoint's — and takes from ``recorded`` (this
    call's) the report-only ledger settings alone: the backend, threads, device or data folder of a
    call that trained nothing are not the run's."""
    previous = None
    try:
        previous = run_folder.read_results(out / run_folder.RESULTS)
    except (DataError, OSError):
        pass
    if previous is not None and not run_folder.config_differences(previous["config"], recorded,
                                                                  run_folder.report_only()):
        results["config"] = _report_only_from(previous["config"], recorded)
        for key in ("versions", "code_version"):
            if key in previous:
                results[key] = previous[key]
        return
    ckpt = out / run_folder.CHECKPOINT
    if config is not None and ckpt.exists():  # no usable results: the checkpoint's config (its versions are not saved)
        saved = run_folder.load_checkpoint(ckpt, mmap=True)["config"]
        results["config"] = _report_only_from({k: saved.get(k, v) for k, v in recorded.items()}, recorded)


def _report_only_from(old, new):
    """``old`` (a recorded config) with the report-only ledger settings of ``new`` (every ``ledger``
    section, the layers' own included, where both have it)."""
    from ..circuit.ledger import LedgerConfig
    if isinstance(old, dict) and isinstance(new, dict):
        out = {}
        for k, v in old.items():
            if k not in new:
                out[k] = v
            elif k == "ledger" and isinstance(v, dict) and isinstance(new[k], dict):
                out[k] = {**v, **{n: new[k][n] for n in LedgerConfig.REPORT_ONLY + LedgerConfig.RECOUNTED
                                  if n in new[k]}}
            else:
                out[k] = _report_only_from(v, new[k])
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_report_only_from(a, b) for a, b in zip(old, new)]
    return old


def _refuse_rule_beside(optimizer, given: dict) -> None:
    """lr/p/k/rounding build the HybridSGD fit makes without an optimizer: beside a given one, whose
    param_groups hold its own, they would be ignored — a ConfigError naming them (they had been dropped
    silently)."""
    (first, value), *rest = given.items()
    also = f"with {', '.join(f'{n}={v!r}' for n, v in rest)}, " if rest else ""
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    held = ", ".join(f"{n}={group[n]!r}" for n in ("lr", "p", "k", "rounding") if n in group)
    holds = f"whose param_groups hold them (param_groups[0]: {held})" if held else "which does not take them"
    raise ConfigError(first, value, reason=(
        f"{also}given beside optimizer={type(optimizer).__name__}, {holds}: fit would ignore these; set them in "
        f"the optimizer (HybridSGD(params, lr=…, p=…, k=…, rounding=…) or optimizer.param_groups[i]['lr']), or "
        f"leave optimizer= out for fit to build a HybridSGD from them"))


def _output_size(model: nn.Module, data: Dataset) -> int:
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec.sizes[-1]
    last = [m for m in model.modules() if isinstance(m, (nn.Linear, HybridModule))]
    if last and hasattr(last[-1], "out_features"):
        return last[-1].out_features
    return data.n_classes


def _held_out(fraction: float, n: int) -> int:
    """The training samples ``validation=fraction`` holds out of n: round(fraction·n), at least one."""
    return max(1, round(fraction * n)) if fraction else 0


def _check_validation(fraction, n: int) -> None:
    """A fraction in [0, 1) that leaves at least one of the n training samples to train on: checked
    before the batch, which a split leaving none had been refused as (batch=1 … in [1, 0])."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ConfigError("validation", fraction, "a fraction in [0, 1)")
    held = _held_out(fraction, n)
    if held >= n:
        allowed = (f"a fraction in [0, 1) holding out at most {n - 1} of them (round(validation × {n}) ≤ {n - 1})"
                   if n > 1 else "0 (no validation), as a single training sample cannot be split")
        raise ConfigError("validation", fraction, reason=f"leaves 0 of the {n} training samples to train on (it holds "
                          f"out {held}): expected {allowed}")


def _split(data: Dataset, fraction: float, seed: int):
    if not fraction:
        return data.x_train, data.y_train, data.x_train[:0], data.y_train[:0]
    n = len(data.x_train)
    n_val = _held_out(fraction, n)
    perm = torch.from_numpy(np.random.default_rng([seed, STREAM_VALIDATION]).permutation(n))
    val, train = perm[:n_val], perm[n_val:]
    return data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val]


def warn_if_one_class(y_train: torch.Tensor, n_out: int, validation: float = 0.0) -> None:
    """Training labels of a single class teach a model of several classes to answer that one whatever
    its input, and its accuracy is then that class's share of the test set: a warning naming both
    counts. (Labels that leave some of the outputs unused are fine: only one class is degenerate.)"""
    learned = 2 if n_out == 1 else n_out  # one sigmoid output learns labels 0 and 1
    classes = torch.unique(y_train)
    if len(classes) == 1 and learned > 1:
        held = f" (after holding out validation={validation})" if validation else ""
        label = int(classes[0])
        warnings.warn(FerristorWarning(
            f"the train_data labels{held} hold 1 class (label {label}, all {len(y_train):,} samples) but the model's "
            f"{n_out} output{'s' if n_out > 1 else ''} learn {learned} classes: it can only learn to answer {label}, "
            f"and its accuracy is then that class's share of the test labels"), stacklevel=4)


def warn_if_no_transfer(optimizer, samples: int) -> None:
    """A transfer period longer than the run means the memristors keep their initial programming."""
    hybrid = [p for g in optimizer.param_groups for p in g["params"] if getattr(p, "owner", None) is not None
              and p.owner.mode != "fp"]
    ks = [g["k"] for g in optimizer.param_groups if "k" in g]
    if hybrid and ks and samples < min(ks):
        warnings.warn(FerristorWarning(
            f"larger than the {samples:,} samples this run trains each replica on: no transfer will happen, "
            f"so the memristors keep their initial weights", field="rule.k", value=min(ks)), stacklevel=3)


def _has_batchnorm(model: nn.Module) -> bool:
    from ..nn.norm import Normalize
    return any(isinstance(m, Normalize) and m.kind == "batch" for m in model.modules())


def _group_settings(optimizer) -> list[dict]:
    """Each param group's settings (lr, p, k, …), without its parameters."""
    return [{k: v for k, v in g.items() if k not in ("params", "param_names")} for g in optimizer.param_groups]


def _identified_by_config_alone(ckpt_path: Path | None, resume_state: dict | None) -> bool:
    """Whether the run to resume was checkpointed with a given config as its whole identity (before
    fit's own description joined it): then it is compared as it was saved."""
    if resume_state is not None:
        saved = resume_state.get("config")
    elif ckpt_path is not None and ckpt_path.exists():
        saved = run_folder.load_checkpoint(ckpt_path, mmap=True).get("config")
    else:
        return False
    return isinstance(saved, dict) and "fit" not in saved


_UNNAMED_LOSS = repr(None)  # the default loss in fit's identity: kept, so folders checkpointed with it resume


def _default_loss_named(error: ConfigMismatchError, name: str) -> ConfigMismatchError:
    """``error`` with the default loss named as results.json names it, 'default (cross_entropy)', not
    'None' (its value in the identity); the saved run's as just 'default' where its model or data
    differ, which may have another default (one output: binary cross-entropy)."""
    fields = {f for f, _, _ in error.differences}
    same_net = not fields & {"model", "fit.model", run_folder.DATA_FINGERPRINT}
    named = f"default ({name})"

    def say(field, value, label):
        return label if field in ("loss", "fit.loss") and value == _UNNAMED_LOSS else value
    differences = [(f, say(f, old, named if same_net else "default"), say(f, new, named))
                   for f, old, new in error.differences]
    if differences == error.differences:
        return error
    return ConfigMismatchError(error.field, error.value, error.what, differences, error.remedy)


def _fit_identity(model, optimizer, loss, epochs, batch, seed, eval_every, validation, validation_seed, test_limit,
                  eval_batch):
    groups = _group_settings(optimizer)
    named = _UNNAMED_LOSS if loss is None else getattr(loss, "__name__", repr(loss))
    return {"model": repr(model), "initial_state": _initial_state_hash(model), "optimizer": type(optimizer).__name__,
            "groups": groups, "loss": named, "epochs": epochs, "batch": batch,
            "seed": seed, "eval_every": eval_every, "validation": validation, "validation_seed": validation_seed,
            "test_limit": test_limit, **({} if eval_batch == EVAL_CHUNK else {"eval_batch": eval_batch})}


# RuleConfig's fields as a HybridSGD group holds them, and those a hybrid layer's HybridConfig holds
_GROUP_RULE = ("lr", "p", "k", "k_unit", "rounding", "sampler")
_LAYER_RULE = ("hidden_lsb", "init_scale", "init_shape")


def _agreed(values: list):
    """The one value all of ``values`` share; None where they differ or there are none."""
    return values[0] if values and all(v == values[0] for v in values) else None


def _network(model: nn.Module, data: Dataset, layers: list[HybridModule], configs: list[dict]) -> dict:
    """``network`` of a run's config: the model's ``NetworkSpec`` where it has one (a ``HybridMLP``,
    as ``ferristor train`` builds); else the layer sizes where the model is a chain of linear layers
    (``sizes`` as TrainConfig's, input first), and in any case its class and hybrid layers."""
    spec = getattr(model, "spec", None)
    out: dict = to_dict(spec) if dataclasses.is_dataclass(spec) else {}
    if not out:
        weighted = [m for m in model.modules() if not list(m.children()) and
                    (isinstance(m, HybridModule) or any(True for _ in m.parameters(recurse=False)))]
        linear = [m for m in weighted if hasattr(m, "in_features") and hasattr(m, "out_features")]
        others = [m for m in weighted if m not in linear and type(m).__name__ not in ("Normalize", "LayerNorm", "BatchNorm1d")]
        sizes = [data.n_features] + [int(m.out_features) for m in linear]
        if linear and not others and all(int(m.in_features) == n for m, n in zip(linear, sizes)):
            out["sizes"] = sizes
    names = {m: name for name, m in model.named_modules()}
    differ = [k for k in (configs[0] if configs else {}) if any(c[k] != configs[0][k] for c in configs)]
    out["model"] = type(model).__name__
    out["layers"] = [{"name": names[m], "type": type(m).__name__,
                      "weight": (list(m.weight.shape)[1 if m.replicas else 0:]  # one chip's
                                 if isinstance(getattr(m, "weight", None), torch.Tensor) else None),
                      **({"config": {k: c[k] for k in differ}} if differ else {})} for m, c in zip(layers, configs)]
    return out


def _repeats(rule: dict, key: str, value) -> bool:
    """Whether a group's ``key`` says what ``rule`` says (the same key, an equal value)."""
    said = rule.get(key)
    return said is not None and (value is said or bool(value == said))


def run_config(model: nn.Module, optimizer, data: Dataset, data_print: str, *, loss, epochs, batch, seeds, seed, eval_every,
               checkpoint_every, test_limit, eval_batch, validation, validation_seed, device) -> dict:
    """What ``fit`` knows of a run, in the shape of ``ferristor train``'s ``TrainConfig`` (the config
    ``results.json`` records, which ``ferristor compare``, ``report`` and ``lifetime`` read): the dataset,
    mode, schedule and seeds; ``rule`` from the optimizer's groups holding hybrid parameters (a setting
    they do not share, or that the optimizer lacks, is null) and the layers' grid; ``transfer``, ``ledger``,
    ``scheme`` and ``layout`` where every hybrid layer has the same (what differs between the layers is
    in each of ``network.layers``); ``network`` (see :func:`_network`); and under ``fit`` what TrainConfig has no
    field for: the optimizer's class and groups, the loss, the shuffle seed and the data fingerprint."""
    layers = hybrid_layers(model)
    configs = [to_dict(m.config) for m in layers]
    modes = sorted({m.config.mode for m in layers})
    groups = _group_settings(optimizer)
    hybrid = [g for g, full in zip(groups, optimizer.param_groups)
              if any(getattr(q, "owner", None) is not None for q in full["params"])] or groups
    rule = {key: _agreed([g.get(key) for g in hybrid]) for key in _GROUP_RULE}
    rule["batch_reduction"] = "mean" if loss is None else None  # the default loss is a mean over the batch
    if rule["k"] is None and rule["k_unit"] is None:  # no transfer period at all: its unit is TrainConfig's default
        del rule["k_unit"]
    rule.update({key: _agreed([getattr(m.config, key) for m in layers]) for key in _LAYER_RULE})
    cfg = {"dataset": data.name, "mode": modes[0] if len(modes) == 1 else ("mixed" if modes else "float"),
           "epochs": epochs, "batch": batch, "seeds": list(seeds), "network": _network(model, data, layers, configs),
           "rule": rule}
    for section in ("transfer", "ledger", "scheme", "layout"):
        found = [c[section] for c in configs]
        if found and all(f == found[0] for f in found):
            cfg[section] = found[0]
    cfg.update({"eval_every": eval_every, "checkpoint_every": checkpoint_every, "test_limit": test_limit,
                "eval_batch": eval_batch, "device": device, "validation": validation, "validation_seed": validation_seed})
    # the groups' other settings (and the rule's where they differ): a group the rule was read from
    # drops what it repeats of the rule; a plain group keeps all, its own lr included (compare shows it)
    sources = {id(g) for g in hybrid}
    kept = [{k: v for k, v in g.items() if not (id(g) in sources and _repeats(rule, k, v))} for g in groups]
    cfg["fit"] = {"optimizer": type(optimizer).__name__, "groups": kept,
                  "loss": "default" if loss is None else getattr(loss, "__name__", type(loss).__name__),
                  "shuffle_seed": seed, "replicas": model_replicas(model), "data_fingerprint": data_print}
    return json.loads(json.dumps(cfg, default=repr))  # as results.json gives it back: lists, not tuples


def _timing(train_time: float, compile_time: float, sample_replicas: int) -> dict:
    """Wall seconds of training (evaluations and checkpoints excluded) and, within them, numba's
    compilation; the speed is that of the training itself, without the compilation."""
    net = train_time - compile_time
    return {"train_seconds": train_time, "compile_seconds": compile_time, "sample_replicas": sample_replicas,
            "sample_replicas_per_second": sample_replicas / net if net > 0 else math.nan,
            "us_per_sample_replica": 1e6 * net / sample_replicas if sample_replicas else math.nan}


def _results(data, data_print, config, history, ledger, total_steps, batch, n_rep, train_time, compile_time, order_seeds,
             validation) -> dict:
    final = history[-1]["test_accuracy"]
    sample_replicas = total_steps * batch * n_rep
    results = {
        "config": config,
        "dataset": {"name": data.name, "fingerprint": data_print, "train": len(data.x_train),
                    "test": len(data.x_test), "features": data.n_features, "classes": data.n_classes,
                    "validation": validation},
        "seeds": order_seeds if n_rep > 1 or config is None else config.get("seeds", order_seeds),
        "steps": total_steps,
        "samples_per_replica": total_steps * batch,
        "final_test_accuracy": final,
        "final_test_accuracy_mean": float(np.mean(final)),
        "final_test_accuracy_std": float(np.std(final, ddof=1)) if len(final) > 1 else 0.0,
        "history": history,
        "ledger": ledger or [],
        "timing": _timing(train_time, compile_time, sample_replicas),
        "versions": versions(),
        "code_version": code_version(),
    }
    if validation:
        results["final_val_accuracy"] = history[-1]["val_accuracy"]
    return results
