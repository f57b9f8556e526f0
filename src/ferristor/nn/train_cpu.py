"""A chunk of batch-1 training steps of a ``HybridMLP`` in one compiled call (numba).

Each step is what ``experiments.fast_step.step`` does in one call and the plain loop does in many:
the fused forward, loss and backward of every replica (``passes_cpu.mlp_train``), then each layer's
masked update from its rank-1 factors (``rule.kernels_cpu``) with the layer's update counter as the
stream's step. The same kernels in the same order, so a chunk of T steps equals T calls of the
per-step path bit for bit; what needs Python — transfers, flushing the event counters — happens
between chunks, which the caller cuts at those points (``experiments.fast_step.run``).

Two schedules of the same work: ``mlp_train_chunk`` splits each step's rows over the threads (a
parallel region per kernel and step: what one replica on several threads needs);
``mlp_train_chunk_by_replica`` gives each thread whole replicas for the whole chunk (one region
per chunk, the kernels' serial twins inside: what R = 1 on one thread and R ≥ threads need;
dense sampler only).
Replicas never share a value, so both give the same bits.

Within a chunk the hidden-weight updates of dense hybrid layers wait for the end of a segment of
steps and run together (``rule.kernels_cpu._hybrid_rank1_steps``, same bits: the passes never read
the hidden integers); each step only stores its rank-1 factors.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..kernel_cache import register, serial_twin
from ..rule.kernels_cpu import _NO_GRAD, _fp_rank1, _hybrid_rank1, _hybrid_rank1_steps, _sparse
from .passes_cpu import mlp_train, train_one

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

# a layer's update kernel: (hybrid or fp) × (dense or sparse sampler)
KIND_HYBRID, KIND_FP, KIND_HYBRID_SPARSE, KIND_FP_SPARSE = 0, 1, 2, 3

# Segments of steps whose dense hybrid updates run together (BENCHMARKS.md, "several steps at
# once"): under ~5 steps the one-step kernels are faster, past ~64 the gain is < 2 % while the
# stored factors grow (R × I × steps float32 per layer).
DEFER_MIN_STEPS = 8
DEFER_MAX_STEPS = 64


@njit(inline="always")
def _segment_length(n_steps):
    """The length of the chunk's segments: as even as possible, at most DEFER_MAX_STEPS."""
    n_seg = max(1, (n_steps + DEFER_MAX_STEPS - 1) // DEFER_MAX_STEPS)
    return max(1, (n_steps + n_seg - 1) // n_seg)


@njit(inline="always")
def _stash(states, kinds, n_rep, seg, defer_min):
    """Per layer, room for a segment's factors: x (R, I, seg) and δ (R, seg, O) — empty for layers
    updated step by step (fp, sparse sampler) or where the segment is shorter than ``defer_min``."""
    xs, ds = [], []
    for li in range(len(states)):
        n = seg if kinds[li] == KIND_HYBRID and seg >= defer_min else 0
        xs.append(np.empty((n_rep, states[li].shape[1], n), np.float32))
        ds.append(np.empty((n_rep, n, states[li].shape[2]), np.float32))
    return xs, ds


@njit(inline="always")
def _load_sample(x0, y, x_data, y_data, idx, r, t):
    """Replica r's input and label at step t of the chunk."""
    k = idx[r, t]
    x0[r, 0, :] = x_data[k]
    y[r, 0] = y_data[k]


@njit(cache=True, boundscheck=False, error_model="numpy")
def mlp_train_chunk(weights, states, pendings, keys, steps, kinds, coefs, p24s, scales, roundings, max_hs, count_zeros,
                    thresholds, buckets, wts, parts, acts, normed, invs, deltas, x_data, y_data, idx, sigmoid, norm,
                    norm_last, eps, defer_min=DEFER_MIN_STEPS):
    """T = idx.shape[1] steps; replica r trains on samples idx[r, 0…T−1] of (x_data, y_data).
    Per layer l: ``states[l]`` is what its update changes (hidden integers, or the weights in fp),
    ``steps[l]`` its update counter (advanced here), ``kinds[l]`` its kernel (KIND_*) and the
    other per-layer arrays that kernel's constants (``kernels_cpu.update_constants``). Dense hybrid
    layers' updates run together in segments of at least ``defer_min`` steps (the same bits; a
    larger value keeps them step by step, for comparison). Returns the last step's per-replica
    losses."""
    n_rep, n_steps = idx.shape
    y = np.empty((n_rep, 1), np.int64)
    x0 = acts[0]
    losses = np.zeros(n_rep, np.float64)
    seg = _segment_length(n_steps)
    for t0 in range(0, n_steps, seg):
        n_seg = min(seg, n_steps - t0)
        xs, ds = _stash(states, kinds, n_rep, n_seg, defer_min)
        for t in range(t0, t0 + n_seg):
            for r in range(n_rep):
                _load_sample(x0, y, x_data, y_data, idx, r, t)
            losses = mlp_train(weights, wts, parts, True, acts, normed, invs, deltas, y, sigmoid, 1.0, norm, norm_last,
                               eps)
            for li in range(len(weights)):
                a = acts[li]
                d = deltas[li]
                x = a.reshape(a.shape[0], a.shape[2])
                delta = d.reshape(d.shape[0], d.shape[2])
                kind = kinds[li]
                if xs[li].shape[2] > 0:
                    xs[li][:, :, t - t0] = x
                    ds[li][:, t - t0, :] = delta
                elif kind >= KIND_HYBRID_SPARSE:
                    _sparse(states[li], pendings[li], delta, x, _NO_GRAD, keys[li], steps[li], kind == KIND_FP_SPARSE,
                            coefs[li], roundings[li], max_hs[li], count_zeros[li], thresholds[li], buckets[li])
                elif kind == KIND_FP:
                    _fp_rank1(states[li], pendings[li], delta, x, keys[li], steps[li], coefs[li], p24s[li])
                else:
                    _hybrid_rank1(states[li], pendings[li], delta, x, keys[li], steps[li], coefs[li], p24s[li],
                                  scales[li], roundings[li], max_hs[li], count_zeros[li])
                steps[li] += 1
        for li in range(len(weights)):
            if xs[li].shape[2] > 0:
                _hybrid_rank1_steps(states[li], pendings[li], ds[li], xs[li], keys[li], steps[li] - n_seg, coefs[li],
                                    p24s[li], scales[li], roundings[li], max_hs[li], count_zeros[li])
    return losses


_hybrid_rank1_serial = serial_twin(_hybrid_rank1)
_fp_rank1_serial = serial_twin(_fp_rank1)
_hybrid_rank1_steps_serial = serial_twin(_hybrid_rank1_steps)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def mlp_train_chunk_by_replica(weights, states, pendings, keys, steps, kinds, coefs, p24s, scales, roundings, max_hs,
                               count_zeros, thresholds, buckets, wts, parts, acts, normed, invs, deltas, x_data, y_data,
                               idx, sigmoid, norm, norm_last, eps, defer_min=DEFER_MIN_STEPS):
    """``mlp_train_chunk`` with the replicas, not the rows, split over the threads: each replica's
    steps in order, its kernels on its own (1, I, O) slices with the same step counters. Dense
    sampler only (KIND_HYBRID, KIND_FP): the sparse walk's serial twin measured 6× slower than its
    parallel build (6.5 vs 1.1 ns per weight on one thread), so sparse layers keep the rows split."""
    for li in range(len(weights)):
        if kinds[li] >= KIND_HYBRID_SPARSE:
            raise ValueError("mlp_train_chunk_by_replica runs the dense sampler only: use mlp_train_chunk")
    n_rep, n_steps = idx.shape
    y = np.empty((n_rep, 1), np.int64)
    x0 = acts[0]
    losses = np.zeros(n_rep, np.float64)
    seg = _segment_length(n_steps)
    for r in prange(n_rep):
        for t0 in range(0, n_steps, seg):
            n_seg = min(seg, n_steps - t0)
            xs, ds = _stash(states, kinds, 1, n_seg, defer_min)
            for t in range(t0, t0 + n_seg):
                _load_sample(x0, y, x_data, y_data, idx, r, t)
                losses[r] = train_one(weights, wts, parts[r], True, acts, normed, invs, deltas, y, sigmoid, 1.0, norm,
                                      norm_last, eps, r, 0)
                for li in range(len(weights)):
                    x = acts[li][r:r + 1, 0, :]
                    delta = deltas[li][r:r + 1, 0, :]
                    if xs[li].shape[2] > 0:
                        xs[li][0, :, t - t0] = x[0]
                        ds[li][0, t - t0, :] = delta[0]
                        continue
                    state, pending, key, step = states[li][r:r + 1], pendings[li][r:r + 1], keys[li][r:r + 1], steps[li] + t
                    if kinds[li] == KIND_FP:
                        _fp_rank1_serial(state, pending, delta, x, key, step, coefs[li], p24s[li])
                    else:
                        _hybrid_rank1_serial(state, pending, delta, x, key, step, coefs[li], p24s[li], scales[li],
                                             roundings[li], max_hs[li], count_zeros[li])
            for li in range(len(weights)):
                if xs[li].shape[2] > 0:
                    _hybrid_rank1_steps_serial(states[li][r:r + 1], pendings[li][r:r + 1], ds[li], xs[li],
                                               keys[li][r:r + 1], steps[li] + t0, coefs[li], p24s[li], scales[li],
                                               roundings[li], max_hs[li], count_zeros[li])
    for li in range(len(weights)):
        steps[li] += n_steps
    return losses
