"""One training step of a ``HybridMLP`` on the CPU in one compiled call, without the autograd engine —
the same kernels in the same order as the plain loop with ferristor's loss::

    loss = ferristor.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

At batch 1 the autograd engine, the optimizer's step wrapper and the custom Functions cost more
than the whole forward and backward pass. ``HybridMLP.train_pass`` runs the fused forward, the loss
gradient and the fused backward in one call and hands each layer the factors the loop would have;
``HybridSGD.hybrid_step`` then applies the rule. Tested bit for bit against the loop
(``tests/experiments/test_fast_step.py``).

At batch 1, :func:`run` goes further: a whole chunk of steps — passes, loss, every layer's update and
the transfers every k inputs — in one compiled call (``nn.train_cpu``), returning to Python only where
the event counters need flushing (every 250 steps), and there doing exactly what ``HybridSGD`` does.
A transfer the chunks cannot run (the quantile circuit transfer, a ledger that skips unchanged
levels) ends the chunk where it falls due instead, and Python runs it. On a CUDA GPU the same
chunks run as replayed CUDA graphs (``nn.train_gpu``).

A user's own ``nn.Sequential`` of ``HybridLinear`` + ``Normalize`` + ReLU takes the same path through
the HybridMLP view of its layers (:func:`compiled_model`).
"""
from __future__ import annotations

from functools import partial

import numpy as np
import torch

from ..backend import gpu_passes, numba_for, triton_for
from ..nn.mlp import HybridMLP, mlp_view
from ..optim import HybridSGD

# Transfers inside the CPU chunks where every hybrid layer's is the fused table transfer (ideal or
# noisy). False ends every chunk where a transfer falls due, and Python runs it (the same bits; read
# per run, for comparison: bench/bench_small_k.py, the tests).
TRANSFERS_IN_CHUNKS = True


def compiled_model(model: torch.nn.Module) -> HybridMLP | None:
    """The HybridMLP whose compiled steps train ``model``: the model itself, or the view of a plain
    ``nn.Sequential`` MLP of hybrid layers sharing its layers (``nn.mlp.mlp_view``); else None."""
    return model if isinstance(model, HybridMLP) else mlp_view(model)


def applies(model, optimizer, default_loss: bool, x: torch.Tensor) -> bool:
    """A HybridMLP trained with the default loss and a HybridSGD owning every parameter: on its fused
    CPU pass, or on a CUDA GPU at batch 1 (:func:`gpu_applies`)."""
    if not (default_loss and isinstance(model, HybridMLP) and model.training and isinstance(optimizer, HybridSGD)
            and optimizer.is_pure()):
        return False
    return gpu_applies(model, optimizer, x) if x.is_cuda else model.fused_ok(x)


def gpu_applies(model: HybridMLP, optimizer: HybridSGD, x: torch.Tensor) -> bool:
    """The graphed GPU chunks (``nn.train_gpu``): batch 1, LayerNorm or none, no bias, the hybrid rule
    or fp on the dense sampler, Triton present, the backend not forced to torch."""
    spec = model.spec
    batch = x.shape[-2] if x.dim() >= 2 else 1
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    return (batch == 1 and torch.is_grad_enabled() and spec.norm != "batch" and not spec.bias
            and x.dtype == torch.float32 and all(
                id(layer.weight) in groups and triton_for(layer.weight, groups[id(layer.weight)]["sampler"])
                and layer.capture_factors and layer.scheme_runner is None for layer in model.layers))


def step(model: HybridMLP, optimizer: HybridSGD, x, y) -> float:
    """The loop's step above (x, y: tensors or numpy arrays) → the loss. ``zero_grad`` has nothing to
    clear here (each step consumes its factors; captured hybrid parameters never hold .grad) but
    for factors a caller left behind."""
    _drop_left_factors(model, optimizer)
    loss = model.train_pass(_array(x), _array(y))
    optimizer.hybrid_step()
    return loss


def run(model: HybridMLP, optimizer: HybridSGD, x, y, idx: np.ndarray, batch: int = 1):
    """The loop's steps over samples ``idx`` (R, T·batch) of (x, y) — at batch 1 in compiled chunks
    (on a GPU graphed, x and y the training data on the device), else one :func:`step` per batch.
    Returns the last step's loss: a float, or on a GPU a device scalar (reading it waits for the
    GPU). ``applies`` must hold."""
    optimizer.check_ready()  # the chunks run the rule without step(), which checks this
    for layer in model.layers:
        layer.check_written()
    n_steps = idx.shape[1] // batch
    if torch.is_tensor(x) and x.is_cuda:
        return _run_chunks(_gpu_plan(model, optimizer, x, y), x, y, idx, n_steps)
    if batch != 1 or not _chunks_apply(model, optimizer, idx):
        for t in range(n_steps):
            loss = step(model, optimizer, x[idx[:, t * batch:(t + 1) * batch]], y[idx[:, t * batch:(t + 1) * batch]])
        return loss
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    losses = _run_chunks(_Chunk(model, optimizer, groups), x, y, idx, n_steps)
    return float(np.float32(float(losses.sum())))  # as functional.cross_entropy returns it at batch 1


def _run_chunks(plan: _Schedule, x, y, idx: np.ndarray, n_steps: int):
    _drop_left_factors(plan.model, plan.optimizer)
    done = 0
    while done < n_steps:
        n = min(n_steps - done, plan.steps_to_python())
        losses = plan.run(x, y, np.ascontiguousarray(idx[:, done:done + n]))
        plan.after(n)
        done += n
    return losses


def _drop_left_factors(model: HybridMLP, optimizer: HybridSGD) -> None:
    if any(layer._tapes for layer in model.layers):
        optimizer.zero_grad()


def _chunks_apply(model, optimizer, idx) -> bool:
    return idx.ndim == 2 and idx.shape[0] == model.n_replicas and all(
        layer.capture_factors and numba_for(layer.weight) and layer.scheme_runner is None  # baselines: per step
        for layer in model.layers) and {
        id(getattr(layer, name)) for layer, name in _entries(model)} <= {
        id(p) for g in optimizer.param_groups for p in g["params"]}


def _entries(model: HybridMLP) -> list:
    """The rule's update entries of a model, (layer, parameter name): every layer's weights, then
    every bias (the order of the chunk kernels' per-entry arrays, ``nn.train_cpu``)."""
    return [(layer, "weight") for layer in model.layers] + [
        (layer, "bias") for layer in model.layers if layer.bias is not None]


class _Schedule:
    """``HybridSGD``'s bookkeeping around chunks of batch-1 steps: where a chunk must end (a transfer
    due, the event counters to flush) and what follows it. Subclasses run the chunks; one whose
    chunks run the transfers themselves (``in_graph``) ends them at flushes only."""

    in_graph = False

    def __init__(self, model: HybridMLP, optimizer: HybridSGD, groups: dict):
        self.model, self.optimizer = model, optimizer
        self.layers = list(model.layers)
        self.entries = _entries(model)
        self.params = [getattr(layer, name) for layer, name in self.entries]
        self.groups = [groups[id(p)] for p in self.params]
        self.updates = [layer._buf(name, "updates") for layer, name in self.entries]

    def steps_to_python(self) -> int:
        """Steps until a parameter's transfer is due or its event counters must be flushed."""
        from ..nn.hybrid import _FLUSH_EVERY
        n = min(_FLUSH_EVERY - layer._since_flush[name] for layer, name in self.entries)
        for (layer, _), param, g in zip(self.entries, self.params, self.groups):
            if layer.mode != "fp" and not self.in_graph:
                n = min(n, g["k"] - self.optimizer.state[param].get("inputs", 0) % g["k"])
        return max(n, 1)

    def after(self, n: int) -> None:
        """``HybridSGD``'s bookkeeping for n steps of one input each: inputs seen, transfers (done
        here, or counted when the chunk ran them), flushes."""
        for (layer, name), param, g in zip(self.entries, self.params, self.groups):
            state = self.optimizer.state[param]
            before = state.get("inputs", 0)
            state["inputs"] = before + n
            layer._since_flush[name] += n - 1
            layer._counted(name)
            due = (before + n) // g["k"] - before // g["k"]
            if layer.mode == "fp" or not due:
                continue
            if self.in_graph:
                layer._buf(name, "transfers").add_(due)
            else:  # chunks end where a transfer falls due: at most one
                layer.program_(name)


class _Chunk(_Schedule):
    """The per-entry arrays and constants of ``nn.train_cpu.mlp_train_chunk`` for a model and its
    optimizer as they are now (entries: ``_entries``)."""

    def __init__(self, model: HybridMLP, optimizer: HybridSGD, groups: dict):
        super().__init__(model, optimizer, groups)
        from ..backend import cpu_module
        from ..nn import train_cpu as T
        K = cpu_module("rule.kernels_cpu")
        from ..nn import functional as F
        self.T, self.P = T, cpu_module("nn.passes_cpu")
        spec = model.spec
        self.passes = (spec.output == "sigmoid", self.P.NORM_CODE[spec.norm], spec.output_norm,
                       np.float32(F.EPS))
        kinds, consts, arrays = [], [], []
        for (layer, name), g in zip(self.entries, self.groups):
            fp, sparse = layer.mode == "fp", g["sampler"] == "sparse"
            kinds.append((T.KIND_FP if fp else T.KIND_HYBRID) + (2 if sparse else 0))
            c = layer.kernel_constants(name, g["lr"], g["p"], g["rounding"], g["sampler"])
            a = layer._cpu_arrays(name)
            arrays.append(a)
            if sparse:  # (fp, coef, rounding, max_h, count_zero, thresholds, buckets)
                consts.append((c[1], 0, 0.0, c[2], c[3], c[4], c[5], c[6]))
            elif fp:  # (lr, p24)
                consts.append((c[0], c[1], 0.0, 0, 0.0, True, *K.gap_tables(1.0)))
            else:  # (neg_coef, p24, c, rounding, max_h, count_zero)
                consts.append((*c, *K.gap_tables(1.0)))
        cols = list(zip(*consts))
        slots = self.P.slots  # per-entry tuples padded: one kernel build for every network (passes_cpu.slots)
        self.states = slots(a["param"] if layer.mode == "fp" else a["hidden"] for (layer, _), a in zip(self.entries, arrays))
        index = {id(layer): li for li, layer in enumerate(self.layers)}
        self.layer_of = np.array([index[id(layer)] for layer, _ in self.entries], np.int64)
        self.pendings = slots(a["pending"] for a in arrays)
        self.keys = slots(a["keys"] for a in arrays)
        self.updates = [a["updates"] for a in arrays]  # numpy views of the buffers: read without a torch call
        self.consts = (np.array(kinds, np.int64), np.array(cols[0], np.float32), np.array(cols[1], np.int32),
                       np.array(cols[2], np.float32), np.array(cols[3], np.int64), np.array(cols[4], np.float32),
                       np.array(cols[5], np.bool_), slots(cols[6]), slots(cols[7]))
        self.transfers = self._transfer_arrays(arrays)
        self.in_graph = bool(self.transfers[0][:, T.T_ON].any())  # the chunks run the transfers: end at flushes only

    def _transfer_arrays(self, arrays: list) -> tuple:
        """The chunk kernels' transfer arrays (``nn.train_cpu``: t_ints, t_f32, t_flags, t_keys, outs),
        with every hybrid entry's transfer on where all of them can run inside the chunks (the fused
        table transfer, ``TRANSFERS_IN_CHUNKS``); else all off, and the chunks end where a transfer
        falls due. t_ints' k, inputs seen and transfers made are filled per call (``arguments``)."""
        T, n = self.T, len(self.entries)
        ints, f32, flags = np.zeros((n, 4), np.int64), np.zeros((n, 3 + 8), np.float32), np.zeros((n, 3), np.bool_)
        keys = [np.zeros((self.model.n_replicas, 2), np.uint32)] * n
        rows = [None if layer.mode == "fp" else T.transfer_rows(layer._bound_cpu_transfer(name, a))
                for (layer, name), a in zip(self.entries, arrays)]
        hybrid = [layer.mode != "fp" for layer, _ in self.entries]
        if (TRANSFERS_IN_CHUNKS and all(r is not None for r, h in zip(rows, hybrid) if h)
                and self._biases_shared(arrays)):
            for u, r in enumerate(rows):
                if r is not None:
                    ints[u, T.T_ON], (f32[u], flags[u], keys[u]) = 1, r
        slots = self.P.slots
        return ints, f32, flags, slots(keys), slots(a["param"] for a in arrays)

    def _biases_shared(self, arrays: list) -> bool:
        """Whether the passes' biases (``HybridMLP._bias_arrays``) are views of what a bias transfer
        writes, so that they see it inside the chunk."""
        biases = self.model._bias_arrays()
        return all(np.shares_memory(biases[self.layer_of[u]], a["param"])
                   for u, ((_, name), a) in enumerate(zip(self.entries, arrays)) if name == "bias")

    def run(self, x, y, idx) -> np.ndarray:
        m = self.model
        steps = np.array([int(u) for u in self.updates], np.int64)
        kinds = self.consts[0]
        at_once = self.T.passes_at_once(kinds)
        # replicas split only for dense hybrid layers: the sparse walk has no serial twin there (see
        # mlp_train_chunk_by_replica), and fp's serial update measured 3× slower than its rows split
        split = by_replica(m.n_replicas, passes_at_once=at_once) and all(k == self.T.KIND_HYBRID for k in kinds)
        if split:
            chunk = self.T.mlp_train_chunk_by_replica
        elif any(k >= self.T.KIND_HYBRID_SPARSE for k in kinds):
            chunk = self.T.mlp_train_chunk
        else:
            chunk = self.T.mlp_train_chunk_dense  # the same kernel, the sparse sampler's branch left out
        losses = chunk(*self.arguments(x, y, idx, steps, at_once))
        for u, s in zip(self.updates, steps):
            u[...] = s
        return losses

    def arguments(self, x, y, idx: np.ndarray, steps: np.ndarray, at_once: bool) -> tuple:
        """The chunk kernels' arguments for steps ``idx`` of (x, y), update counters ``steps``."""
        m, slots = self.model, self.P.slots
        weights = m._weight_arrays()
        wts, parts = self.P.transposed(weights, [layer.mode != "fp" for layer in self.layers])
        ints = self.transfers[0]
        for u, ((layer, name), param, g) in enumerate(zip(self.entries, self.params, self.groups)):
            if ints[u, self.T.T_ON]:
                ints[u, self.T.T_K], ints[u, self.T.T_SEEN] = g["k"], self.optimizer.state[param].get("inputs", 0)
                ints[u, self.T.T_MADE] = int(layer._cpu_arrays(name)["transfers"][0])
        return (slots(weights), slots(m._bias_arrays()), self.layer_of, self.states, self.pendings, self.keys, steps,
                *self.consts, slots(wts), parts.shape[2], x, y, idx, *self.passes,
                self.T.DEFER_MIN_STEPS, at_once,  # DEFER_MIN_STEPS read per call: bench_step.py varies it
                self.T.passes_parts(m.n_replicas, _threads()), *self.transfers)


class _GpuChunks(_Schedule):
    """The graphed GPU steps (``nn.train_gpu``) for a model, its optimizer and the training data on the
    device; kept on the model between calls (the graphs are captured once per chunk length)."""

    def __init__(self, model: HybridMLP, optimizer: HybridSGD, groups: dict, x: torch.Tensor, y: torch.Tensor):
        super().__init__(model, optimizer, groups)
        from ..nn.train_gpu import GraphedSteps, LayerPlan
        from ..rule.functional import keys_on
        from ..rule.streams import STREAM_UPDATE
        plans = []
        for layer, g in zip(self.layers, self.groups):
            fp, cfg = layer.mode == "fp", layer.config
            weight = layer.crossbar("weight", layer.weight.data)
            rule = dict(lr=g["lr"], p=g["p"], lsb=cfg.hidden_lsb, rounding=g["rounding"],
                        max_hidden=cfg.layout.max_hidden, count_zero=cfg.ledger.count_zero_updates)
            in_graph = not fp and layer.transfer_capturable("weight")
            plans.append(LayerPlan(weight, weight if fp else layer.crossbar("weight", layer._buf("weight", "hidden")),
                                   layer.crossbar("weight", layer._buf("weight", "pending")),
                                   keys_on(layer.stream_keys("weight", STREAM_UPDATE), weight.device), fp, rule,
                                   partial(_write_transfer, layer) if in_graph else None))
        # transfers inside the chunks when a graph can hold every hybrid layer's
        self.in_graph = all(p.fp or p.transfer is not None for p in plans)
        spec = model.spec
        self.steps = GraphedSteps(plans, x, y, norm=spec.norm, norm_last=spec.output_norm,
                                  sigmoid=spec.output == "sigmoid", passes=gpu_passes())

    def tag(self, x: torch.Tensor, y: torch.Tensor) -> tuple:
        """What the captured graphs depend on: the tensors' storage, the rule, the layers' seeds (the
        optimizer itself: :func:`_gpu_plan` checks it)."""
        return (x.data_ptr(), y.data_ptr(), tuple(
            (layer.weight.data_ptr(), layer._buf("weight", "pending").data_ptr(),
             (layer._buffers.get("weight_hidden") if layer.mode != "fp" else layer.weight).data_ptr(),
             id(layer.seeds), layer.seeds._version) for layer in self.layers),
            tuple((g["lr"], g["p"], g["rounding"]) for g in self.groups))

    def _due(self, n: int) -> tuple:
        """(step, layer) pairs of the chunk after which a layer's transfer falls due."""
        due = []
        for li, (layer, g) in enumerate(zip(self.layers, self.groups)):
            if layer.mode != "fp":
                before, k = self.optimizer.state[layer.weight].get("inputs", 0), g["k"]
                due += [(s, li) for s in range(n) if (before + s + 1) % k == 0]
        return tuple(sorted(due))

    def run(self, x, y, idx: np.ndarray) -> torch.Tensor:
        n = idx.shape[1]
        transfers = [int(layer._buf("weight", "transfers")[0]) if layer.mode != "fp" else 0 for layer in self.layers]
        loss = self.steps.run(torch.from_numpy(idx), [int(u) for u in self.updates],
                              self._due(n) if self.in_graph else (), transfers)
        for u in self.updates:
            u += n
        return loss


def _write_transfer(layer, counter: torch.Tensor, offset: int) -> None:
    """A layer's transfer inside a graph: transfer number = the counter's value (on the device) + offset."""
    from ..circuit.transfer import CounterNoise
    from ..rule.streams import STREAM_TRANSFER
    keys = layer.stream_keys("weight", STREAM_TRANSFER)
    layer.write_transfer_("weight", CounterNoise(keys, offset, on_device=counter))


def _gpu_plan(model: HybridMLP, optimizer: HybridSGD, x: torch.Tensor, y: torch.Tensor) -> _GpuChunks:
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    cached = getattr(model, "_gpu_chunks", None)
    if cached is not None and cached.optimizer is optimizer and cached.tag(x, y) == cached.built_for:
        cached.groups = [groups[id(layer.weight)] for layer in cached.layers]
        return cached
    plan = _GpuChunks(model, optimizer, groups, x, y)
    plan.built_for = plan.tag(x, y)
    model._gpu_chunks = plan
    return plan


def _threads() -> int:
    import numba
    return numba.get_num_threads()


def by_replica(n_replicas: int, threads: int | None = None, passes_at_once: bool = False) -> bool:
    """Whether a chunk splits replicas rather than rows over the threads (``nn.train_cpu``; the
    same bits either way). Where a segment's passes run at once (every layer hybrid), the rows
    split measured 4–6 % faster at R = 10 to 40 on two threads (``bench/bench_split.py``), but its
    stash of factors grows with R: replicas from 16 per thread. Otherwise when every thread
    gets whole replicas in equal shares, or at least four — else one replica's rows are shared
    out, as R = 1 on two threads needs. (``_Chunk.run`` splits replicas only for dense hybrid
    layers.)"""
    if threads is None:
        threads = _threads()
    if passes_at_once:
        return n_replicas >= 16 * threads
    return n_replicas % threads == 0 or n_replicas >= 4 * threads


def _array(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().numpy()
