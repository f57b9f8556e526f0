"""The CPU passes' faster forms compute the same bits as the plain ones."""
import numpy as np
import pytest
from numba import njit

from ferristor.nn import passes_cpu as P


@njit
def _rowwise(g, w, gx):
    P._back_input(g, w, gx)


@njit
def _from_transposed(g, wt, gx, part):
    P._back_input_t(g, wt, gx, part)


@pytest.mark.parametrize("n_in,n_out", [(200, 100), (13, 21), (5, 3), (7, 8), (9, 17)])
def test_input_gradient_from_transposed_weights_is_the_same_bits(n_in, n_out):
    rng = np.random.default_rng(n_in * 100 + n_out)
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    g = (rng.standard_normal(n_out) * 10.0 ** rng.integers(-4, 4, n_out)).astype(np.float32)  # mixed scales: order matters
    a, b = np.zeros(n_in, np.float32), np.zeros(n_in, np.float32)
    _rowwise(g, w, a)
    _from_transposed(g, np.ascontiguousarray(w.T), b, np.full((8, n_in + 3), np.nan, np.float32))
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    # and a different summation order would show: the plain sequential sum differs somewhere
    if n_out >= 16:
        seq = np.zeros(n_in, np.float32)
        for k in range(n_out):
            seq += g[k] * w[:, k]
        assert not np.array_equal(seq.view(np.uint32), a.view(np.uint32))


def test_transposed_copies_only_weights_that_stay_fixed():
    ws = [np.zeros((2, 4, 3), np.float32), np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5),
          np.zeros((2, 5, 2), np.float32)]
    wts, parts = P.transposed(ws, [True, True, False])
    assert wts[0].size == 0 and wts[2].size == 0  # layer 0 never needs it; layer 2 changes every step
    assert np.array_equal(wts[1], ws[1].transpose(0, 2, 1)) and wts[1].flags.c_contiguous
    assert parts.shape == (2, 8, 5)


@njit
def _forward(x, w, out):
    P._affine(x, w, out, False, out)


def test_forward_four_rows_per_pass_keeps_the_row_order():
    rng = np.random.default_rng(3)
    for n_in in (1, 4, 7, 33):
        x = (rng.standard_normal(n_in) * 10.0 ** rng.integers(-4, 4, n_in)).astype(np.float32)
        w = rng.standard_normal((n_in, 19)).astype(np.float32)
        out = np.zeros(19, np.float32)
        _forward(x, w, out)
        ref = np.zeros(19, np.float32)
        for i in range(n_in):  # ((x0·w0 + x1·w1) + …) in float32, row by row
            ref = (ref + x[i] * w[i]).astype(np.float32)
        assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))


def test_per_layer_tuples_are_padded_to_one_type_for_every_depth():
    """numba compiles a kernel once per tuple length: padded, networks of 1 to 8 layers (and 1 to 8
    update entries) reach the kernels with one type, so one build serves them all."""
    from numba import typeof
    ws = [np.zeros((2, 4, 3), np.float32), np.zeros((2, 3, 5), np.float32), np.zeros((2, 5, 2), np.float32)]
    types = {typeof(P.slots(ws[:n])) for n in (1, 2, 3)} | {typeof(P.slots(ws * 2 + ws[:2]))}
    assert len(types) == 1 and len(P.slots(ws)) == P.SLOTS
    assert len(P.slots(ws * 3)) == 2 * P.SLOTS  # deeper: the next multiple (another build)
    assert _depth(P.slots(ws[:2])) == 2 and _depth(P.slots(ws * 3)) == 9 and _depth(tuple(ws)) == 3
    assert P.slots(ws)[:3] == tuple(ws)  # the arrays themselves, not copies


@njit
def _depth(arrays):
    return P._depth(arrays)
