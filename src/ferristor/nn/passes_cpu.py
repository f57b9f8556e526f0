"""Forward and backward passes on the CPU (numba), deterministic on every x86 CPU.

Weights are crossbars (R, I, O); activations (R, B, features). Every sum has one fixed order:
``out[o] = ((x₀w₀ₒ + x₁w₁ₒ) + …)`` runs over rows with the columns in the vector lanes, and the
backward dot products keep eight interleaved partial sums joined by a fixed tree. No fastmath (no
reassociation, no contracted multiply-add), so AVX-512, AVX2 and plain SSE2 builds give the same
bits — unlike a BLAS call, whose blocking depends on the CPU. The per-layer kernels and the fused
whole-MLP kernels are built from the same pieces, so a network assembled from
``HybridLinear`` + ``Normalize`` + ReLU equals :class:`HybridMLP`'s fused path bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .detmath import exp64, log64
from ..kernel_cache import register

register()  # before any @njit: the caches follow every kernel source (kernel_cache)

_f32 = np.float32
NORM_CODE = {"none": 0, "layer": 1, "batch": 2}

# --- per-layer tuples: one build for every depth -----------------------------------------------

SLOTS = 8  # per-layer (and per-update-entry) tuples reach the kernels padded to a multiple of this
_FILLERS: dict = {}


def slots(arrays) -> tuple:
    """``arrays`` (one per layer, or per update entry) padded with empty arrays of their type to a
    multiple of SLOTS. numba compiles a kernel once per tuple length: unpadded, each depth of network
    and each choice of biases built the training kernels anew (~1–2 min of a first run each); padded,
    every network of up to eight layers and eight update entries shares one build. Kernels count
    the layers with :func:`_depth` (a filler's first axis is empty; a layer's never is)."""
    arrays = tuple(arrays)
    missing = -len(arrays) % SLOTS
    if not missing:
        return arrays
    a = arrays[0]
    key = (a.dtype.str, a.ndim)
    filler = _FILLERS.get(key)
    if filler is None:
        filler = _FILLERS[key] = np.empty((0,) * a.ndim, a.dtype)
    return arrays + (filler,) * missing


@njit(inline="always")
def _depth(arrays):
    """The number of real entries of a tuple padded by :func:`slots`."""
    n = 0
    for i in range(len(arrays)):
        if arrays[i].shape[0] == 0:
            break
        n += 1
    return n


# --- pieces --------------------------------------------------------------------------------------
# A piece that runs once per layer and sample (or a tile of samples) is compiled on its own (``_piece``)
# and called, not inlined: numba types and lowers an inlined function anew at every call site and
# runs the parallel passes over it inside each ``prange`` body, which had made the fused kernels'
# first build longer (``mlp_train`` 45.5 -> 31.5 s; the CLI's first ``train`` 79 -> 72 s) for no
# speed (the call is once per layer and sample; the loops stay inside the piece). Pieces called in
# an inner loop (``_dot``, ``_relu``) stay inlined.
_piece = njit(boundscheck=False, error_model="numpy")


@_piece
def _affine(x, w, bias, has_bias, out):
    """out[o] = Σ_i x[i]·w[i, o] (+ bias[o], the constant-input row, added last)."""
    n_in, n_out = w.shape
    for o in range(n_out):
        out[o] = _f32(0.0)
    # four rows per pass over out[]: the same sums in the same order (((o + a) + b) + c) + d, a
    # quarter of the loads and stores of the accumulator
    n4 = n_in - n_in % 4
    for i in range(0, n4, 4):
        x0, x1, x2, x3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        r0, r1, r2, r3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        for o in range(n_out):
            out[o] = (((out[o] + x0 * r0[o]) + x1 * r1[o]) + x2 * r2[o]) + x3 * r3[o]
    for i in range(n4, n_in):
        xi = x[i]
        row = w[i]
        for o in range(n_out):
            out[o] += xi * row[o]
    if has_bias:
        for o in range(n_out):
            out[o] += bias[o]


@njit(inline="always")
def _dot(a, b, n):
    """Σ a[k]·b[k] with eight interleaved partial sums and a fixed joining tree."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = _f32(0.0)
    n8 = n - n % 8
    for k in range(0, n8, 8):
        s0 += a[k] * b[k]
        s1 += a[k + 1] * b[k + 1]
        s2 += a[k + 2] * b[k + 2]
        s3 += a[k + 3] * b[k + 3]
        s4 += a[k + 4] * b[k + 4]
        s5 += a[k + 5] * b[k + 5]
        s6 += a[k + 6] * b[k + 6]
        s7 += a[k + 7] * b[k + 7]
    for k in range(n8, n):
        s0 += a[k] * b[k]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@_piece
def _back_input(g, w, gx):
    """gx[i] = Σ_o g[o]·w[i, o]."""
    n_in, n_out = w.shape
    for i in range(n_in):
        gx[i] = _dot(g, w[i], n_out)


@_piece
def _back_input_t(g, wt, gx, part):
    """``_back_input`` from the transposed weights wt (O, I), with the rows i in the vector lanes:
    part[j, i] is row i's partial sum j, fed the same products in the same order and joined by the
    same tree, so gx is the same bits. Row by row, each dot is a chain of dependent additions
    (4.5 µs for 200×100); across rows they vectorise (1.1 µs). part: scratch (8, ≥ I)."""
    n_out, n_in = wt.shape
    n8 = n_out - n_out % 8
    for j in range(8):
        pj = part[j]
        for i in range(n_in):
            pj[i] = _f32(0.0)
    for k in range(0, n8, 8):
        for j in range(8):
            gk, row, pj = g[k + j], wt[k + j], part[j]
            for i in range(n_in):
                pj[i] += gk * row[i]
    p0 = part[0]
    for k in range(n8, n_out):
        gk, row = g[k], wt[k]
        for i in range(n_in):
            p0[i] += gk * row[i]
    p1, p2, p3, p4, p5, p6, p7 = part[1], part[2], part[3], part[4], part[5], part[6], part[7]
    for i in range(n_in):
        gx[i] = ((p0[i] + p1[i]) + (p2[i] + p3[i])) + ((p4[i] + p5[i]) + (p6[i] + p7[i]))


def transposed(weights, fixed) -> tuple:
    """Contiguous (R, O, I) copies of the weights (R, I, O) of layers 1… for ``_back_input_t``, where
    ``fixed[l]`` says layer l's weights stay as they are while the copy is used (hybrid weights
    change only at transfers; fp weights at every step: those, and layer 0, whose input gradient is
    never needed, get an empty array and the row-wise backward), and scratch (R, 8, max I)."""
    wts = tuple(np.ascontiguousarray(w.transpose(0, 2, 1)) if li and fixed[li] else np.empty((w.shape[0], 0, 0), np.float32)
                for li, w in enumerate(weights))
    widest = max([w.shape[1] for w in weights[1:]], default=0)
    return wts, np.empty((weights[0].shape[0], 8, widest), np.float32)


@_piece
def _layer_norm(z, eps):
    """In place: z ← (z − mean)/σ over its features (γ = 1, β = 0); returns 1/σ."""
    n = z.shape[0]
    s = _f32(0.0)
    for k in range(n):
        s += z[k]
    mu = s / _f32(n)
    v = _f32(0.0)
    for k in range(n):
        z[k] -= mu
        v += z[k] * z[k]
    inv = _f32(1.0) / np.sqrt(v / _f32(n) + eps)
    for k in range(n):
        z[k] *= inv
    return inv


@_piece
def _layer_norm_back(g, nz, inv):
    """In place: g ← ∂L/∂z from g = ∂L/∂n, n = normalised z, inv = 1/σ."""
    n = g.shape[0]
    sg = _f32(0.0)
    sgz = _f32(0.0)
    for k in range(n):
        sg += g[k]
        sgz += g[k] * nz[k]
    mg = sg / _f32(n)
    mgz = sgz / _f32(n)
    for k in range(n):
        g[k] = inv * (g[k] - mg - nz[k] * mgz)


@njit(inline="always")
def _relu(z):
    # torch.relu's rule (keeps −0.0), so a per-layer model with nn.ReLU gets the same bits
    return _f32(0.0) if z < 0 else z


# --- per-layer kernels ---------------------------------------------------------------------------

@njit(parallel=True, cache=True, boundscheck=False)
def linear_forward(w, x, bias, has_bias, out):
    """w (R, I, O), x (R, B, I), bias (R, O) → out (R, B, O)."""
    n_rep, n_b = x.shape[0], x.shape[1]
    for t in prange(n_rep * n_b):
        r = t // n_b
        b = t - r * n_b
        _affine(x[r, b], w[r], bias[r], has_bias, out[r, b])


@njit(parallel=True, cache=True, boundscheck=False)
def linear_backward_input(w, g, gx):
    """w (R, I, O), g (R, B, O) → gx (R, B, I)."""
    n_rep, n_b = g.shape[0], g.shape[1]
    for t in prange(n_rep * n_b):
        r = t // n_b
        b = t - r * n_b
        _back_input(g[r, b], w[r], gx[r, b])


@njit(parallel=True, cache=True, boundscheck=False)
def outer_sum(x, g, out):
    """out[r, i, o] = Σ_b x[r, b, i]·g[r, b, o], summed over b in order: a batch's dense gradient."""
    n_rep, n_b, n_in = x.shape
    n_out = g.shape[2]
    for t in prange(n_rep * n_in):
        r = t // n_in
        i = t - r * n_in
        row = out[r, i]
        for o in range(n_out):
            row[o] = _f32(0.0)
        for b in range(n_b):
            xb = x[r, b, i]
            gb = g[r, b]
            for o in range(n_out):
                row[o] += xb * gb[o]


@njit(parallel=True, cache=True, boundscheck=False)
def norm_forward(z, kind, eps, inv):
    """In place on z (R, B, F): LayerNorm (kind 1; inv (R, B)) or BatchNorm over B (kind 2; inv (R, F))."""
    n_rep, n_b, n_f = z.shape
    if kind == 1:
        for t in prange(n_rep * n_b):
            r = t // n_b
            b = t - r * n_b
            inv[r, b] = _layer_norm(z[r, b], eps)
    else:
        for t in prange(n_rep * n_f):
            r = t // n_f
            f = t - r * n_f
            c = np.empty(n_b, np.float32)
            for b in range(n_b):
                c[b] = z[r, b, f]
            inv[r, f] = _layer_norm(c, eps)
            for b in range(n_b):
                z[r, b, f] = c[b]


@njit(parallel=True, cache=True, boundscheck=False)
def norm_backward(g, nz, kind, inv):
    """In place on g (R, B, F), the gradient w.r.t. the normalised values nz."""
    n_rep, n_b, n_f = g.shape
    if kind == 1:
        for t in prange(n_rep * n_b):
            r = t // n_b
            b = t - r * n_b
            _layer_norm_back(g[r, b], nz[r, b], inv[r, b])
    else:
        for t in prange(n_rep * n_f):
            r = t // n_f
            f = t - r * n_f
            a, c = np.empty(n_b, np.float32), np.empty(n_b, np.float32)
            for b in range(n_b):
                a[b] = g[r, b, f]
                c[b] = nz[r, b, f]
            _layer_norm_back(a, c, inv[r, f])
            for b in range(n_b):
                g[r, b, f] = a[b]


# --- losses ------------------------------------------------------------------------------------

@_piece
def _softmax_ce(z, t, scale, g):
    """Cross-entropy of logits z (float32, C) for class t: g ← (softmax(z) − onehot(t))·scale (float32);
    returns the loss (float64). exp/log from ``detmath``: the same bits on every machine."""
    n = z.shape[0]
    mx = np.float64(z[0])
    for j in range(1, n):
        mx = max(mx, np.float64(z[j]))
    s = 0.0
    for j in range(n):
        s += exp64(np.float64(z[j]) - mx)
    for j in range(n):
        pj = exp64(np.float64(z[j]) - mx) / s
        g[j] = np.float32(((pj - 1.0) if j == t else pj) * scale)
    return log64(s) - (np.float64(z[t]) - mx)


@_piece
def _sigmoid_bce(z, y, scale, g):
    """Binary cross-entropy of one logit z for a target y ∈ {0, 1}: g[0] ← (σ(z) − y)·scale; returns the loss."""
    zz = np.float64(z[0])
    e = exp64(-abs(zz))
    sig = 1.0 / (1.0 + e) if zz >= 0 else e / (1.0 + e)
    g[0] = np.float32((sig - y) * scale)
    return max(zz, 0.0) - zz * y + log64(1.0 + e)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def loss_grad(logits, y, sigmoid, scale, grad):
    """Per-row loss (float64, N) of logits (N, C) and targets y (N,), writing ∂loss/∂logits into grad."""
    losses = np.empty(logits.shape[0], np.float64)
    for i in prange(logits.shape[0]):
        if sigmoid:
            losses[i] = _sigmoid_bce(logits[i], np.float64(y[i]), scale, grad[i])
        else:
            losses[i] = _softmax_ce(logits[i], np.int64(y[i]), scale, grad[i])
    return losses


# --- the whole MLP in one call -------------------------------------------------------------------


@_piece
def _forward_one(weights, biases, acts, normed, invs, r, b, norm, norm_last, eps):
    n_layers = _depth(weights)
    for li in range(n_layers):
        z = normed[li][r, b]
        _affine(acts[li][r, b], weights[li][r], biases[li][r], biases[li].shape[1] > 0, z)
        _activate(acts, normed, invs, li, n_layers, r, b, norm, norm_last, eps)


@_piece
def _activate(acts, normed, invs, li, n_layers, ra, b, norm, norm_last, eps):
    """After layer li's product (in normed[li][ra, b]): its LayerNorm in place, then the next
    layer's input acts[li + 1][ra, b] ← ReLU."""
    z = normed[li][ra, b]
    if norm == 1 and (norm_last or li < n_layers - 1):
        invs[ra, b, li] = _layer_norm(z, eps)
    if li < n_layers - 1:
        nxt = acts[li + 1][ra, b]
        for k in range(z.shape[0]):
            nxt[k] = _relu(z[k])


@_piece
def _backward_one(weights, normed, invs, deltas, r, b, norm, norm_last):
    # no scratch is read without use_t: any 2-D float32 array stands in (no allocation per sample)
    _backward_from(weights, weights, weights[0][r], False, normed, invs, deltas, r, r, b, norm, norm_last)


@_piece
def _backward_from(weights, wts, part, use_t, normed, invs, deltas, r, ra, b, norm, norm_last):
    """``_backward_one``; with ``use_t``, the input gradients from the transposed weights ``wts``
    of the layers that have them (``transposed``). Replica r's weights; its activations and
    gradients at [ra, b] of the buffers."""
    last = _depth(weights) - 1
    for li in range(last, -1, -1):
        g = deltas[li][ra, b]
        if norm == 1 and (norm_last or li < last):
            _layer_norm_back(g, normed[li][ra, b], invs[ra, b, li])
        if li:
            prev, zp = deltas[li - 1][ra, b], normed[li - 1][ra, b]
            if use_t and wts[li].shape[1] > 0:
                _back_input_t(g, wts[li][r], prev, part)
            else:
                _back_input(g, weights[li][r], prev)
            for k in range(prev.shape[0]):  # ReLU: gradient only where the unit was active
                if zp[k] <= 0:
                    prev[k] = _f32(0.0)


@njit(parallel=True, cache=True, boundscheck=False)
def mlp_forward(weights, biases, acts, normed, invs, norm, norm_last, eps):
    """Per-layer tuples (weights, biases, acts, normed) padded by :func:`slots`. acts[0] (R, B, I)
    holds the input. Per layer l: normed[l] ← norm(acts[l]·W_l + b_l) (the last
    layer's only with norm_last), and acts[l + 1] ← ReLU(normed[l]); invs (R, B, L) keeps each
    LayerNorm's 1/σ. ``biases[l]`` (R, O), or (R, 0) for a layer without bias (``HybridMLP._bias_arrays``)."""
    n_rep, n_b = acts[0].shape[0], acts[0].shape[1]
    for t in prange(n_rep * n_b):
        r = t // n_b
        _forward_one(weights, biases, acts, normed, invs, r, t - r * n_b, norm, norm_last, eps)


@njit(parallel=True, cache=True, boundscheck=False)
def mlp_backward(weights, normed, invs, deltas, norm, norm_last):
    """deltas[L−1] (R, B, C) holds ∂L/∂logits on entry; on exit deltas[l] = ∂L/∂(pre-activation of
    layer l), so layer l's weight gradient is Σ_b acts[l]ᵀ·deltas[l] (the rule's factors)."""
    n_rep, n_b = deltas[0].shape[0], deltas[0].shape[1]
    for t in prange(n_rep * n_b):
        r = t // n_b
        _backward_one(weights, normed, invs, deltas, r, t - r * n_b, norm, norm_last)


@njit(parallel=True, cache=True, boundscheck=False, error_model="numpy")
def mlp_train(weights, biases, wts, parts, use_t, acts, normed, invs, deltas, y, sigmoid, scale, norm, norm_last, eps):
    """Forward, loss (``loss_grad``'s) and backward of every sample in one call: exactly what
    ``mlp_forward`` → ``loss_grad`` → ``mlp_backward`` compute. y (R, B); returns per-sample losses.
    With ``use_t``, the backward reads the transposed weights ``wts`` (``transposed``; scratch
    ``parts`` (R·B, 8, ≥ I)); else pass ``weights`` and an empty ``parts``."""
    n_rep, n_b = acts[0].shape[0], acts[0].shape[1]
    losses = np.empty(n_rep * n_b, np.float64)
    for t in prange(n_rep * n_b):
        r = t // n_b
        losses[t] = train_one(weights, biases, wts, parts[t] if use_t else parts[0], use_t, acts, normed, invs, deltas, y,
                              sigmoid, scale, norm, norm_last, eps, r, t - r * n_b)
    return losses


@_piece
def train_one(weights, biases, wts, part, use_t, acts, normed, invs, deltas, y, sigmoid, scale, norm, norm_last, eps, r,
              b):
    """``mlp_train`` for sample b of replica r; returns its loss. With ``use_t``, the backward uses
    the transposed weights ``wts`` and scratch ``part`` (``transposed``): the same bits, faster."""
    _forward_one(weights, biases, acts, normed, invs, r, b, norm, norm_last, eps)
    return _loss_backward(weights, wts, part, use_t, normed, invs, deltas, y, sigmoid, scale, norm, norm_last, r, r, b)


@_piece
def _loss_backward(weights, wts, part, use_t, normed, invs, deltas, y, sigmoid, scale, norm, norm_last, r, ra, b):
    """The loss of sample [ra, b] of the buffers (replica r's weights), its gradient and the backward."""
    last = _depth(weights) - 1
    if sigmoid:
        loss = _sigmoid_bce(normed[last][ra, b], np.float64(y[ra, b]), scale, deltas[last][ra, b])
    else:
        loss = _softmax_ce(normed[last][ra, b], np.int64(y[ra, b]), scale, deltas[last][ra, b])
    _backward_from(weights, wts, part, use_t, normed, invs, deltas, r, ra, b, norm, norm_last)
    return loss


# --- many samples through the same weights: the steps between two transfers ----------------------

AFFINE_TILE = 16  # samples per pass over a block of weight rows (16 × 200 float32 accumulators: 12.8 KB, in L1)


@_piece
def _affine_block(xs, w, out, n):
    """out[b] = xs[b]·w for b < n, each sum in ``_affine``'s order (the same bits as n calls), but
    each four rows of w are loaded once per tile of AFFINE_TILE samples rather than once per sample."""
    n_in, n_out = w.shape
    n4 = n_in - n_in % 4
    for b0 in range(0, n, AFFINE_TILE):
        b1 = min(n, b0 + AFFINE_TILE)
        for b in range(b0, b1):
            ob = out[b]
            for o in range(n_out):
                ob[o] = _f32(0.0)
        for i in range(0, n4, 4):
            r0, r1, r2, r3 = w[i], w[i + 1], w[i + 2], w[i + 3]
            for b in range(b0, b1):
                x0, x1, x2, x3 = xs[b, i], xs[b, i + 1], xs[b, i + 2], xs[b, i + 3]
                ob = out[b]
                for o in range(n_out):
                    ob[o] = (((ob[o] + x0 * r0[o]) + x1 * r1[o]) + x2 * r2[o]) + x3 * r3[o]
        for i in range(n4, n_in):
            row = w[i]
            for b in range(b0, b1):
                xi = xs[b, i]
                ob = out[b]
                for o in range(n_out):
                    ob[o] += xi * row[o]


@_piece
def train_block(weights, biases, wts, part, acts, normed, invs, deltas, y, sigmoid, scale, norm, norm_last, eps, r, n):
    """``train_one`` for samples 0…n−1 of one-replica buffers (1, ≥ n, F), through replica r's weights,
    layer by layer (``_affine_block``) — valid where the weights stay as they are for all n samples,
    as hybrid weights do between two transfers. Each sample's arithmetic is ``train_one``'s, so the
    same bits. Returns the last sample's loss."""
    n_layers = _depth(weights)
    for li in range(n_layers):
        _affine_block(acts[li][0], weights[li][r], normed[li][0], n)
        if biases[li].shape[1] > 0:  # added last, as _affine adds it
            bias = biases[li][r]
            for b in range(n):
                ob = normed[li][0, b]
                for o in range(ob.shape[0]):
                    ob[o] += bias[o]
        for b in range(n):
            _activate(acts, normed, invs, li, n_layers, 0, b, norm, norm_last, eps)
    loss = 0.0
    for b in range(n):
        loss = _loss_backward(weights, wts, part, True, normed, invs, deltas, y, sigmoid, scale, norm, norm_last, r, 0,
                              b)
    return loss
