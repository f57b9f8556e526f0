"""A chunk of batch-1 training steps of a ``HybridMLP`` in one compiled call (numba).

Each step is what ``experiments.fast_step.step`` does in one call and the plain loop does in many:
the fused forward, loss and backward of every replica (``passes_cpu.train_block``, the arithmetic
of ``passes_cpu.mlp_train``), then each layer's
masked update from its rank-1 factors (``rule.kernels_cpu``) with the layer's update counter as the
stream's step, and every k inputs a layer's transfer (``circuit.transfer_cpu._table_transfer``, at the
transfer counter ``HybridModule.program_`` would use). The same kernels in the same order, so a chunk
of T steps equals T calls of the per-step path bit for bit; what needs Python — flushing the event
counters, a transfer of another kind — happens between chunks, which the caller cuts at those
points (``experiments.fast_step.run``).

Two schedules of the same work: ``mlp_train_chunk`` splits each step's rows over the threads (a
parallel region per kernel and step: what one replica on several threads needs);
``mlp_train_chunk_by_replica`` gives each thread whole replicas from one transfer to the next (one
region per period between transfers, the kernels' serial twins inside, the transfers between
regions: what R = 1 on one thread and R ≥ threads need; dense sampler only).
Replicas never share a value, so both give the same bits.

Within a chunk the hidden-weight updates of dense hybrid layers wait for the end of a segment of
steps and run together (``rule.kernels_cpu._hybrid_rank1_steps``, same bits: the passes never read
the hidden integers); each step only stores its rank-1 factors. Where every layer is hybrid, the
passes go further the other way: the weights they read (the memristor pairs) change only at
transfers, between chunks, and each step's input is a data sample, so a segment's forward, loss and
backward run first for all its steps at once, layer by layer (``passes_cpu.train_block``: each
weight row read once per tile of samples, each sample's sums in the same order), cut into parts
that share the replicas out over the threads; then the updates run in step order, from the stash.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..circuit.transfer_cpu import _table_transfer
from ..kernel_cache import constant_twin, register, serial_twin
from ..rule.kernels_cpu import _NO_GRAD, _fp_rank1, _hybrid_rank1, _hybrid_rank1_steps, _sparse
from .passes_cpu import _depth, train_block

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

# a layer's update kernel: (hybrid or fp) × (dense or sparse sampler)
KIND_HYBRID, KIND_FP, KIND_HYBRID_SPARSE, KIND_FP_SPARSE = 0, 1, 2, 3

# Segments of steps whose dense hybrid updates run together (BENCHMARKS.md, "several steps at
# once"): under ~5 steps the one-step kernels are faster, past ~64 the gain is < 2 % while the
# stored factors grow (R × I × steps float32 per layer).
DEFER_MIN_STEPS = 8
DEFER_MAX_STEPS = 64
# False in mlp_train_chunk_dense, the twin for chunks without the sparse sampler (the default):
# the branch that calls it is dropped before compiling, sparing a first run ~4 s of compiling.
_WITH_SPARSE = True

# Each segment's passes first, all its steps at once, where every layer is hybrid (``train_block``);
# False runs them one step at a time, as fp layers need (the same bits), for comparison (bench_step.py).
BLOCK_PASSES = True


@njit(inline="always")
def _segment_length(n_steps):
    """The length of the chunk's segments: as even as possible, at most DEFER_MAX_STEPS."""
    n_seg = max(1, (n_steps + DEFER_MAX_STEPS - 1) // DEFER_MAX_STEPS)
    return max(1, (n_steps + n_seg - 1) // n_seg)


@njit(inline="always")
def _deferred(kind, seg, defer_min):
    """Whether a layer's updates of a segment of ``seg`` steps wait and run together."""
    return kind == KIND_HYBRID and seg >= defer_min


@njit(inline="always")
def _stash(weights, n_rep, seg):
    """Per layer, room for a segment's factors: x (R, I, seg) and δ (R, seg, O)."""
    xs, ds = [], []
    for li in range(_depth(weights)):
        xs.append(np.empty((n_rep, weights[li].shape[1], seg), np.float32))
        ds.append(np.empty((n_rep, seg, weights[li].shape[2]), np.float32))
    return xs, ds


@njit(inline="always")
def _factor_x(xs, ones, layer_of, ui, n_layers):
    """The input factor of update entry ``ui``: its layer's stored inputs, or for a bias entry
    (ui ≥ n_layers) the constant input 1 — a (R, 1, seg) array of ones."""
    return xs[layer_of[ui]] if ui < n_layers else ones


@njit(inline="always")
def _fixed_weights(kinds, block_passes):
    """Whether a chunk's passes may run a segment at once (``passes_cpu.train_block``): every layer
    hybrid, whose weights (the memristor pairs) change only at transfers, between chunks."""
    if not block_passes:
        return False
    for li in range(len(kinds)):
        if kinds[li] == KIND_FP or kinds[li] == KIND_FP_SPARSE:
            return False
    return True


def passes_at_once(kinds) -> bool:
    """Whether chunks run each segment's passes at once (``train_block``): every layer hybrid, whose
    weights (the memristor pairs) change only at transfers, between chunks — and BLOCK_PASSES
    (read per call). The kernels check the first condition again (``_fixed_weights``)."""
    return BLOCK_PASSES and all(k in (KIND_HYBRID, KIND_HYBRID_SPARSE) for k in kinds)


def passes_parts(n_replicas: int, threads: int) -> int:
    """Into how many parts ``segment_passes`` cuts each replica's steps so that the R·parts tasks
    share out evenly over the threads: threads / gcd(R, threads) (R = 1 on two threads: two
    halves, each reading the weights once per tile; R = 10: whole replicas)."""
    return threads // math.gcd(n_replicas, threads)


# --- transfers inside a chunk ----------------------------------------------------------------------
# Per update entry u, what its transfer every k inputs needs (``experiments.fast_step._Chunk``):
# t_ints[u] = (transfers here: 1, else 0; k; inputs seen before the chunk; transfers made before
# it), t_f32[u] = (2^-shift, σ, level step, the 8 level means) and t_flags[u] = (ideal means, noisy,
# fold) — the table transfer's constants (``circuit.transfer_cpu``), its noise keys in t_keys[u] and
# the analogue weights it writes in outs[u]. A chunk's steps run in periods that end where a
# transfer falls due; the transfers run there, after that step's updates, as between two chunks.
T_ON, T_K, T_SEEN, T_MADE = 0, 1, 2, 3
T_INV_DIV, T_SIGMA, T_STEP, T_MEANS = 0, 1, 2, 3


def transfer_rows(bound) -> tuple | None:
    """An entry's rows of t_f32 and t_flags and its noise keys, from its bound CPU transfer
    (``circuit.transfer_cpu.bind_table_transfer``), or None where the transfer is another kernel (the
    quantile circuit transfer: chunks end where it falls due and Python runs it)."""
    if getattr(bound, "kernel", None) is not _table_transfer:
        return None
    _, inv_div, means, ideal, keys = bound.head
    sigma, noisy, fold, level_step, _ = bound.tail
    return (np.array((inv_div, sigma, level_step, *means), np.float32), np.array((ideal, noisy, fold), np.bool_),
            keys)


@njit(inline="always")
def _period_end(t, n_steps, t_ints):
    """The end (exclusive) of the period from step t: the first step after which an entry's
    transfer falls due (its inputs seen a multiple of k), or the chunk's end."""
    stop = n_steps
    for u in range(t_ints.shape[0]):
        if t_ints[u, T_ON]:
            k = t_ints[u, T_K]
            stop = min(stop, t + k - (t_ints[u, T_SEEN] + t) % k)
    return stop


@njit(inline="always")
def _transfer_at(t_ints, u, stop):
    """The number of entry u's transfer due after the chunk's first ``stop`` steps (transfers made
    before + those due since the chunk began), or 0 where none falls due there."""
    if not t_ints[u, T_ON]:
        return 0
    k, seen = t_ints[u, T_K], t_ints[u, T_SEEN]
    if (seen + stop) % k:
        return 0
    return t_ints[u, T_MADE] + (seen + stop) // k - seen // k


@njit(inline="always")
def _means(t_f32, u):
    m = t_f32[u, T_MEANS:]
    return (m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7])


@njit(inline="always")
def _transpose_into(w, wt):
    """wt[r] ← w[r]ᵀ: a layer's transposed copy (``passes_cpu.transposed``) after its transfer."""
    for r in range(w.shape[0]):
        for i in range(w.shape[1]):
            for o in range(w.shape[2]):
                wt[r, o, i] = w[r, i, o]


@njit(inline="always")
def _transfers_due(states, layer_of, t_ints, t_f32, t_flags, t_keys, outs, weights, wts, n_layers, stop):
    """The transfers due after the chunk's first ``stop`` steps (:func:`_transfer_at`), each entry's
    whole crossbar, all replicas (its rows split over the threads); a weight entry's transposed copy
    follows (the next passes read it). Called between parallel loops, never inside one."""
    for u in range(t_ints.shape[0]):
        index = _transfer_at(t_ints, u, stop)
        if index == 0:
            continue
        _table_transfer(states[u], t_f32[u, T_INV_DIV], _means(t_f32, u), t_flags[u, 0], t_keys[u], np.int64(index),
                        t_f32[u, T_SIGMA], t_flags[u, 1], t_flags[u, 2], t_f32[u, T_STEP], outs[u])
        li = layer_of[u]
        if u < n_layers and wts[li].shape[1] > 0:
            _transpose_into(weights[li], wts[li])


_i64 = np.int64  # every integer argument of _segment_passes: one build, not one per literal or index type


@njit(cache=True, boundscheck=False, error_model="numpy")
def _segment_passes(weights, biases, wts, widest, x_data, y_data, idx, r, t0, n, xs, ds, xr, col0, sigmoid, norm,
                    norm_last, eps):
    """Replica r's forward, loss and backward of the chunk's steps t0…t0 + n − 1, all at once
    (``train_block``; n = 1: one step); step t's factors x and δ go to the stash at
    xs[l][xr, :, col0 + t − t0] and ds[l][xr, col0 + t − t0, :]. Returns the last step's loss.
    Compiled once, not inlined: both chunk kernels call it."""
    n_layers = _depth(weights)
    acts = [np.empty((1, n, weights[li].shape[1]), np.float32) for li in range(n_layers)]
    normed = [np.empty((1, n, weights[li].shape[2]), np.float32) for li in range(n_layers)]
    deltas = [np.empty((1, n, weights[li].shape[2]), np.float32) for li in range(n_layers)]
    invs = np.empty((1, n, n_layers), np.float32)
    y = np.empty((1, n), np.int64)
    if x_data.shape[1] != weights[0].shape[1]:
        raise ValueError("the samples' width differs from the first layer's inputs")
    # element loops, not slice assignments: each of those compiles numba's shape-mismatch message
    # formatting (~3 s of a first run's compiling)
    for b in range(n):
        k = idx[r, t0 + b]
        for j in range(x_data.shape[1]):
            acts[0][0, b, j] = x_data[k, j]
        y[0, b] = y_data[k]
    loss = train_block(weights, biases, wts, np.empty((8, widest), np.float32), acts, normed, invs, deltas, y, sigmoid,
                       1.0, norm, norm_last, eps, r, n)
    for li in range(n_layers):
        for b in range(n):
            for j in range(acts[li].shape[2]):
                xs[li][xr, j, col0 + b] = acts[li][0, b, j]
            for j in range(deltas[li].shape[2]):
                ds[li][xr, col0 + b, j] = deltas[li][0, b, j]
    return loss


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def segment_passes(weights, biases, wts, widest, x_data, y_data, idx, t0, n, xs, ds, col0, sigmoid, norm, norm_last,
                   eps, parts):
    """``_segment_passes`` of every replica (stash row r), each replica's steps cut into ``parts``
    parts (tasks of the parallel loop: ``passes_parts``). Returns the last step's losses."""
    n_rep = idx.shape[0]
    parts = max(1, min(n, parts))
    size = -(-n // parts)
    losses = np.zeros(n_rep, np.float64)
    for task in prange(n_rep * parts):
        r = task // parts
        b0 = (task - r * parts) * size
        b1 = min(n, b0 + size)
        if b1 > b0:
            loss = _segment_passes(weights, biases, wts, widest, x_data, y_data, idx, _i64(r), _i64(t0 + b0),
                                   _i64(b1 - b0), xs, ds, _i64(r), _i64(col0 + b0), sigmoid, norm, norm_last, eps)
            if b1 == n:
                losses[r] = loss
    return losses


@njit(cache=True, boundscheck=False, error_model="numpy")
def mlp_train_chunk(weights, biases, layer_of, states, pendings, keys, steps, kinds, coefs, p24s, scales, roundings,
                    max_hs, count_zeros, thresholds, buckets, wts, widest, x_data, y_data, idx, sigmoid, norm, norm_last,
                    eps, defer_min, block_passes, n_parts, t_ints, t_f32, t_flags, t_keys, outs):
    """T = idx.shape[1] steps; replica r trains on samples idx[r, 0…T−1] of (x_data, y_data).
    ``weights``/``biases`` are what the passes read (``passes_cpu.mlp_forward``); every per-layer and
    per-entry tuple comes padded (``passes_cpu.slots``: one build for every network). Per update entry u
    — each layer's weights (u < L), then each bias: layer ``layer_of[u]``'s, input 1 — ``states[u]``
    is what its update changes (hidden integers, or the values in fp), ``steps[u]`` its update
    counter (advanced here), ``kinds[u]`` its kernel (KIND_*) and the other per-entry arrays that
    kernel's constants (``kernels_cpu.update_constants``); ``wts`` the transposed weights
    (``passes_cpu.transposed``), ``widest`` their widest row. Dense hybrid entries' updates run
    together in segments of at least ``defer_min`` steps (the same bits; a larger value keeps them
    step by step, for comparison). Where every entry is hybrid, each segment's passes run first,
    all its steps at once (``block_passes=False``: one step at a time, as fp layers need), each
    replica's steps cut into ``n_parts`` tasks (``passes_parts``). Entries whose ``t_ints[u, T_ON]`` is
    set transfer every k inputs inside the chunk (see T_ON above; ``outs[u]``, the analogue values
    they write, are the arrays the passes read). Returns the last step's per-replica losses."""
    if not _WITH_SPARSE:
        for ui in range(len(kinds)):
            if kinds[ui] >= KIND_HYBRID_SPARSE:
                raise ValueError("mlp_train_chunk_dense runs the dense sampler only: use mlp_train_chunk")
    n_rep, n_steps = idx.shape
    n_layers = _depth(weights)
    losses = np.zeros(n_rep, np.float64)
    block = _fixed_weights(kinds, block_passes)
    p0 = 0
    while p0 < n_steps:  # periods between transfers, whose passes read fixed weights
        stop = _period_end(p0, n_steps, t_ints)
        seg = _segment_length(stop - p0)
        for t0 in range(p0, stop, seg):
            n_seg = min(seg, stop - t0)
            xs, ds = _stash(weights, n_rep, n_seg)
            ones = np.ones((n_rep, 1, n_seg), np.float32)
            if block:
                losses = segment_passes(weights, biases, wts, widest, x_data, y_data, idx, _i64(t0), _i64(n_seg), xs,
                                        ds, _i64(0), sigmoid, norm, norm_last, eps, n_parts)
            for t in range(t0, t0 + n_seg):
                if not block:
                    losses = segment_passes(weights, biases, wts, widest, x_data, y_data, idx, _i64(t), _i64(1), xs, ds,
                                            _i64(t - t0), sigmoid, norm, norm_last, eps, n_parts)
                for ui in range(len(kinds)):
                    kind = kinds[ui]
                    if not _deferred(kind, n_seg, defer_min):
                        x = np.ascontiguousarray(_factor_x(xs, ones, layer_of, ui, n_layers)[:, :, t - t0])
                        delta = np.ascontiguousarray(ds[layer_of[ui]][:, t - t0, :])
                        if _WITH_SPARSE and kind >= KIND_HYBRID_SPARSE:
                            _sparse(states[ui], pendings[ui], delta, x, _NO_GRAD, keys[ui], steps[ui],
                                    kind == KIND_FP_SPARSE, coefs[ui], roundings[ui], max_hs[ui], count_zeros[ui],
                                    thresholds[ui], buckets[ui])
                        elif kind == KIND_FP:
                            _fp_rank1(states[ui], pendings[ui], delta, x, keys[ui], steps[ui], coefs[ui], p24s[ui])
                        else:
                            _hybrid_rank1(states[ui], pendings[ui], delta, x, keys[ui], steps[ui], coefs[ui], p24s[ui],
                                          scales[ui], roundings[ui], max_hs[ui], count_zeros[ui])
                    steps[ui] += 1
            for ui in range(len(kinds)):
                if _deferred(kinds[ui], n_seg, defer_min):
                    _hybrid_rank1_steps(states[ui], pendings[ui], ds[layer_of[ui]],
                                        _factor_x(xs, ones, layer_of, ui, n_layers), keys[ui], steps[ui] - n_seg,
                                        coefs[ui], p24s[ui], scales[ui], roundings[ui], max_hs[ui], count_zeros[ui])
        _transfers_due(states, layer_of, t_ints, t_f32, t_flags, t_keys, outs, weights, wts, n_layers, stop)
        p0 = stop
    return losses


_hybrid_rank1_serial = serial_twin(_hybrid_rank1)
_fp_rank1_serial = serial_twin(_fp_rank1)
_hybrid_rank1_steps_serial = serial_twin(_hybrid_rank1_steps)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def mlp_train_chunk_by_replica(weights, biases, layer_of, states, pendings, keys, steps, kinds, coefs, p24s, scales,
                               roundings, max_hs, count_zeros, thresholds, buckets, wts, widest, x_data, y_data, idx,
                               sigmoid, norm, norm_last, eps, defer_min, block_passes, n_parts, t_ints, t_f32, t_flags,
                               t_keys, outs):
    """``mlp_train_chunk`` with the replicas, not the rows, split over the threads: each replica's
    steps in order, its kernels on its own (1, I, O) slices with the same step counters. Dense
    sampler only (KIND_HYBRID, KIND_FP): the sparse walk's serial twin measured 6× slower than its
    parallel build (6.5 vs 1.1 ns per weight on one thread), so sparse layers keep the rows split.
    ``n_parts`` is not read: each replica's steps run on one thread."""
    for ui in range(len(kinds)):
        if kinds[ui] >= KIND_HYBRID_SPARSE:
            raise ValueError("mlp_train_chunk_by_replica runs the dense sampler only: use mlp_train_chunk")
    n_rep, n_steps = idx.shape
    n_layers = _depth(weights)
    losses = np.zeros(n_rep, np.float64)
    block = _fixed_weights(kinds, block_passes)
    p0 = 0
    while p0 < n_steps:  # periods between transfers: each replica's steps in parallel, then the transfers
        stop = _period_end(p0, n_steps, t_ints)
        seg = _segment_length(stop - p0)
        for r in prange(n_rep):
            for t0 in range(p0, stop, seg):
                n_seg = min(seg, stop - t0)
                xs, ds = _stash(weights, 1, n_seg)
                ones = np.ones((1, 1, n_seg), np.float32)
                if block:
                    losses[r] = _segment_passes(weights, biases, wts, widest, x_data, y_data, idx, _i64(r), _i64(t0),
                                                _i64(n_seg), xs, ds, _i64(0), _i64(0), sigmoid, norm, norm_last, eps)
                for t in range(t0, t0 + n_seg):
                    if not block:
                        losses[r] = _segment_passes(weights, biases, wts, widest, x_data, y_data, idx, _i64(r),
                                                    _i64(t), _i64(1), xs, ds, _i64(0), _i64(t - t0), sigmoid, norm,
                                                    norm_last, eps)
                    for ui in range(len(kinds)):
                        if _deferred(kinds[ui], n_seg, defer_min):
                            continue
                        x = _factor_x(xs, ones, layer_of, ui, n_layers)[0:1, :, t - t0]
                        delta = ds[layer_of[ui]][0:1, t - t0, :]
                        state, pending = states[ui][r:r + 1], pendings[ui][r:r + 1]
                        key, step = keys[ui][r:r + 1], steps[ui] + t
                        if kinds[ui] == KIND_FP:
                            _fp_rank1_serial(state, pending, delta, x, key, step, coefs[ui], p24s[ui])
                        else:
                            _hybrid_rank1_serial(state, pending, delta, x, key, step, coefs[ui], p24s[ui], scales[ui],
                                                 roundings[ui], max_hs[ui], count_zeros[ui])
                for ui in range(len(kinds)):
                    if _deferred(kinds[ui], n_seg, defer_min):
                        _hybrid_rank1_steps_serial(states[ui][r:r + 1], pendings[ui][r:r + 1], ds[layer_of[ui]],
                                                   _factor_x(xs, ones, layer_of, ui, n_layers), keys[ui][r:r + 1],
                                                   steps[ui] + t0, coefs[ui], p24s[ui], scales[ui], roundings[ui],
                                                   max_hs[ui], count_zeros[ui])
        _transfers_due(states, layer_of, t_ints, t_f32, t_flags, t_keys, outs, weights, wts, n_layers, stop)
        p0 = stop
    for ui in range(len(kinds)):
        steps[ui] += n_steps
    return losses


# mlp_train_chunk for chunks whose layers all draw with the dense sampler (built last: it copies this
# module's globals as they are now)
mlp_train_chunk_dense = constant_twin(mlp_train_chunk, "_dense", _WITH_SPARSE=False)
