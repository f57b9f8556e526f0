"""Counter-based draws: Philox known answers, the same bits on the CPU kernels and the torch path,
no shared streams over a long run, and the statistics the rule relies on."""
import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from numba import njit

from ferristor.rule import random_cpu as rc
from ferristor.rule import random_torch as rt
from ferristor.rule.streams import STREAM_TRANSFER, STREAM_UPDATE, stream_key, stream_keys

# Random123's kat_vectors for Philox-4x32-10: (counter, key, expected output).
KAT = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
       ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
       ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]


@njit
def _philox_cpu(c, k):
    u = np.uint32
    return rc.philox4x32(u(c[0]), u(c[1]), u(c[2]), u(c[3]), u(k[0]), u(k[1]))


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers_on_both_paths(ctr, key, expected):
    assert tuple(int(v) for v in _philox_cpu(np.array(ctr, np.uint32), np.array(key, np.uint32))) == expected
    t = [torch.tensor([v], dtype=torch.int64) for v in (*ctr, *key)]
    assert tuple(int(v) for v in rt.philox4x32(*t)) == expected


def _keys(seeds=(0, 1, 2), name="layers.0.weight", stream=STREAM_UPDATE):
    return stream_keys(list(seeds), name, stream)


def test_words_and_normals_are_the_same_bits_on_cpu_and_torch():
    keys = _keys()
    rows = np.arange(5, dtype=np.int64) + 2 ** 33  # rows and steps beyond 32 bits
    step = 2 ** 40 + 3
    w_cpu = rc.words(keys, rows, 37, step)
    kt = torch.from_numpy(keys.astype(np.int64))
    w_t = rt.words(kt, torch.from_numpy(rows), torch.arange(37), step)
    assert np.array_equal(w_cpu.astype(np.int64), w_t.numpy())
    n_cpu = rc.normals(keys, rows, 301, 7)
    n_t = rt.normals(kt, torch.from_numpy(rows), 301, 7)
    assert np.array_equal(n_cpu.view(np.uint32), n_t.numpy().view(np.uint32))


def test_keys_depend_on_seed_name_and_stream_only():
    assert stream_key(3, "a.weight", 2) == stream_key(3, "a.weight", 2)
    assert len({stream_key(s, n, k) for s in (0, 1) for n in ("a.weight", "b.weight") for k in (2, 3)}) == 8


def test_no_two_steps_or_rows_share_their_draws():
    """The old 32-bit additive keys made distinct steps repeat each other's draws (shifted copies).
    Here every consecutive pair of draws in a long run is unique: 4,000 steps × 200 rows × 40 columns."""
    keys = _keys((0,))
    pairs = []
    for step in range(0, 4000, 1):
        w = rc.words(keys, np.arange(200, dtype=np.int64), 40, step)[0].astype(np.uint64)
        pairs.append(((w[:, :-1] << np.uint64(32)) | w[:, 1:]).ravel())
    pairs = np.sort(np.concatenate(pairs))  # (sort + compare: np.unique is far slower here)
    # 31.2 M pairs of 64 bits: a duplicate by chance has probability ≈ n²/2^65 ≈ 3e-5
    assert not (pairs[1:] == pairs[:-1]).any()


def test_uniforms_are_uniform_and_independent_of_neighbours_steps_and_replicas():
    keys = _keys(range(4))
    u = (rc.words(keys, np.arange(500, dtype=np.int64), 500, 11) >> 8).astype(np.float64) / 2 ** 24
    n = u[0].size
    hist, _ = np.histogram(u[0], bins=20, range=(0, 1))
    chi2 = (((hist - n / 20) ** 2) / (n / 20)).sum()
    assert chi2 < 45  # 19 dof: P(chi2 > 45) ≈ 7e-4
    flat = u[0].ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01  # neighbouring columns
    assert abs(np.corrcoef(u[0, :-1].ravel(), u[0, 1:].ravel())[0, 1]) < 0.01  # neighbouring rows
    assert abs(np.corrcoef(u[0].ravel(), u[1].ravel())[0, 1]) < 0.01  # replicas
    u2 = (rc.words(keys, np.arange(500, dtype=np.int64), 500, 12) >> 8).astype(np.float64) / 2 ** 24
    assert abs(np.corrcoef(u[0].ravel(), u2[0].ravel())[0, 1]) < 0.01  # steps


def test_normals_are_standard_normal_and_match_exact_box_muller():
    keys = _keys((5,), stream=STREAM_TRANSFER)
    z = rc.normals(keys, np.arange(1000, dtype=np.int64), 400, 3).ravel().astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n) and abs(z.std() - 1) < 5 / math.sqrt(2 * n)
    qs = np.arange(1, 20) / 20
    assert np.max(np.abs(np.quantile(z, qs) - [NormalDist().inv_cdf(q) for q in qs])) < 0.01
    # float32 with fixed series reproduces numpy's float64 log/cos Box–Muller on the same 24-bit uniforms
    w = rc.words(keys, np.arange(3, dtype=np.int64), 200, 3)[0]
    u1 = ((w[:, 0::2] >> 8).astype(np.float64) + 1) / 2 ** 24
    u2 = (w[:, 1::2] >> 8).astype(np.float64) / 2 ** 24
    exact = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    ours = rc.normals(keys, np.arange(3, dtype=np.int64), 100, 3)[0]
    assert np.max(np.abs(ours - exact)) < 5e-6
    assert np.abs(z).max() <= math.sqrt(2 * 24 * math.log(2)) + 1e-5  # the tail ends at 5.77σ (24-bit u1)


# --- the sparse sampler: geometric gaps (random_math, random_cpu.next_event, update.sparse_draws) ---

def test_gap_table_is_the_geometric_distribution_to_2_pow_minus_32():
    from fractions import Fraction

    from ferristor.rule import random_math as RM
    for p24 in (1, 3355444, 8388608, 16777215):  # p = 2^-24, 0.2, 0.5, 1 − 2^-24
        th = RM.gap_thresholds(p24)
        q = Fraction(2 ** 24 - p24, 2 ** 24)
        assert all(a >= b for a, b in zip(th, th[1:])) and th[-1] > 0  # equal at most at the tail (S_k ≈ 1)
        for k in range(0, len(th), max(1, len(th) // 50)):  # P(G ≥ k + 1) = S_k / 2^32
            assert abs(Fraction(th[k], 2 ** 32) - q ** (k + 1)) <= Fraction(1, 2 ** 33)
        assert len(th) == RM.GAP_TABLE_MAX or q ** (len(th) + 1) * 2 ** 32 < Fraction(1, 2)
    assert RM.gap_thresholds(2 ** 24) == (0,)  # p = 1: every gap is 0
    # the bucket shortcut gives the bisection's answer everywhere
    th = RM.gap_thresholds(3355444)
    buckets = RM.gap_buckets(th)
    rng = np.random.default_rng(0)
    for u in list(rng.integers(0, 2 ** 32, 20000)) + [0, 1, 2 ** 32 - 1] + list(th) + [t - 1 for t in th]:
        b = buckets[int(u) >> RM.GAP_BUCKET_SHIFT]
        if b >= 0:
            assert b + (int(u) < (th + (0,))[b]) == RM.gap_of(int(u), th)


def _sparse(p, shape, step, seeds=(0,)):
    from ferristor.rule.update import sparse_draws
    keys = torch.from_numpy(_keys(seeds).astype(np.int64))
    mask, off = sparse_draws(keys, shape, step, p)
    return mask.numpy(), off.numpy()


def test_sparse_masks_are_independent_bernoulli():
    """Per position frequency p, per-row counts Binomial(O, p), gaps geometric, no correlation between
    neighbouring columns, rows, steps or replicas — the statistics of a fresh Bernoulli(p) per weight."""
    p, n_rows, n_cols = 0.2, 4000, 50
    m = np.stack([_sparse(p, (2, n_rows, n_cols), s, seeds=(0, 1))[0] for s in range(5)]).astype(np.float64)
    n = m[:, 0].size
    assert abs(m[:, 0].mean() - p) < 5 * (p * (1 - p) / n) ** 0.5
    per_col = m[:, 0].mean((0, 1))  # every position, the first included
    assert np.all(np.abs(per_col - p) < 5 * (p * (1 - p) / (5 * n_rows)) ** 0.5)
    counts = np.bincount(m[:, 0].sum(-1).astype(int).ravel(), minlength=n_cols + 1)
    expect = np.array([math.comb(n_cols, k) * p ** k * (1 - p) ** (n_cols - k) for k in range(n_cols + 1)]) * 5 * n_rows
    big = expect > 5
    assert (((counts[big] - expect[big]) ** 2) / expect[big]).sum() < 60  # ~20 dof: P(chi2 > 60) ≈ 1e-5
    x = m[:, 0]
    for a, b in ((x[..., :-1], x[..., 1:]), (x[:, :-1], x[:, 1:]), (x[:-1], x[1:]), (m[:, 0], m[:, 1])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01  # columns, rows, steps, replicas
    # gaps between masked-in columns are geometric, P(gap = k) = p·q^k: counted from every start
    # (column 0, or one past an event) at least 15 columns before the row's end, so none is cut short
    hist, starts = np.zeros(15), 0
    for row in x.reshape(-1, n_cols):
        ev = np.flatnonzero(row)
        st = np.r_[0, ev + 1]
        keep = st <= n_cols - 15
        starts += keep.sum()
        g = ev - st[:-1]
        hist += np.bincount(g[keep[:-1] & (g < 15)], minlength=15)
    expect = p * (1 - p) ** np.arange(15) * starts
    assert (((hist - expect) ** 2) / expect).sum() < 40  # 15 dof: P(chi2 > 40) ≈ 5e-4


def test_sparse_rounding_uniforms_are_uniform_and_independent_of_the_gaps():
    mask, off = _sparse(0.2, (1, 6000, 60), 3)
    u = off[mask].astype(np.float64)
    hist, _ = np.histogram(u, bins=20, range=(0, 1))
    assert (((hist - u.size / 20) ** 2) / (u.size / 20)).sum() < 45  # 19 dof
    gap_before = np.concatenate([np.diff(np.r_[-1, np.flatnonzero(row)]) - 1 for row in mask[0]])
    assert abs(np.corrcoef(u, gap_before)[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_sparse_and_dense_samplers_give_the_same_event_count_distribution():
    """Per-device event counts over many steps (what the ledger reports): Binomial(steps, p) from both."""
    from ferristor.rule.update import crossbar_draws
    keys = torch.from_numpy(_keys((7,)).astype(np.int64))
    steps, shape = 200, (1, 60, 40)
    counts = {s: sum(crossbar_draws(keys, shape, t, p=0.2, sampler=s)[0].to(torch.int64) for t in range(steps))
              for s in ("dense", "sparse")}
    edges = np.arange(0, steps + 2)
    h = {s: np.histogram(c.numpy().ravel(), edges)[0] for s, c in counts.items()}
    expect = np.array([math.comb(steps, k) * 0.2 ** k * 0.8 ** (steps - k) for k in range(steps + 1)]) * counts["dense"].numel()
    big = expect > 20
    for s in h:
        c = counts[s].double()
        n = c.numel()  # 5σ bounds on the mean and (≈ √(2/n) relative) on the variance
        assert abs(c.mean().item() - 0.2 * steps) < 5 * (steps * 0.16 / n) ** 0.5
        assert abs(c.var().item() / (steps * 0.16) - 1) < 5 * (2 / n) ** 0.5
        assert (((h[s][big] - expect[big]) ** 2) / expect[big]).sum() < 3 * big.sum()
