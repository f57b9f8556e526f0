"""Replicas are independent chips: a replica equals the same seed alone, bit for bit; runs repeat exactly."""
import pytest
import torch

from ferristor.circuit.transfer import TransferConfig
from ferristor.nn import HybridMLP, NetworkSpec
from ferristor.rule.config import RuleConfig

SPEC = NetworkSpec(sizes=(20, 16, 8, 4))


def _run(seeds, mode, backend, steps=60, data_seed=0):
    g = torch.Generator().manual_seed(data_seed)
    xs = torch.rand(steps, 20, generator=g) * 2 - 1
    ys = torch.randint(0, 4, (steps,), generator=g)
    tr = TransferConfig(model="table" if mode == "hm-var" else "ideal")
    m = HybridMLP(SPEC, seeds, mode=mode, rule=RuleConfig(k=7, lr=0.5), transfer=tr, backend=backend)
    m.reset_parameters()
    for t in range(steps):
        # each replica sees its own sample order, as with per-seed shuffling
        idx = torch.tensor([(t * (s + 1)) % steps for s in seeds])
        m.train_step(xs[idx], ys[idx])
    return m


@pytest.mark.parametrize("mode", ["fp", "hm", "hm-var"])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_replica_equals_single_run(mode, backend):
    batch = _run([0, 1, 2], mode, backend)
    for r, seed in enumerate([0, 1, 2]):
        alone = _run([seed], mode, backend)
        for bb, ba in zip(batch.banks, alone.banks):
            for name, buf in bb.named_buffers():
                if buf.dim() and buf.shape[0] == 3:
                    assert torch.equal(buf[r], getattr(ba, name)[0]), (mode, name)


@pytest.mark.parametrize("mode", ["fp", "hm", "hm-var"])
def test_backends_agree(mode):
    """The update kernels are bit-exact (tests/rule); the fused passes agree with torch's to float32
    rounding, which can flip a rare stochastic-rounding draw, so weights agree almost everywhere."""
    a, b = _run([4, 5], mode, "numba"), _run([4, 5], mode, "torch")
    for ba, bb in zip(a.banks, b.banks):
        if mode == "fp":
            torch.testing.assert_close(ba.weight, bb.weight, rtol=1e-3, atol=1e-4)
        else:
            assert (ba.hidden == bb.hidden).float().mean() > 0.99


def test_same_seed_same_result_and_seeds_differ():
    a, b = _run([3], "hm-var", "numba"), _run([3], "hm-var", "numba")
    assert torch.equal(a.banks[0].hidden, b.banks[0].hidden)
    assert torch.equal(a.banks[0].analogue, b.banks[0].analogue)
    c = _run([4], "hm-var", "numba")
    assert not torch.equal(a.banks[0].hidden, c.banks[0].hidden)


def test_analogue_weights_are_the_truncated_levels_in_hm():
    m = _run([0], "hm", "numba", steps=56)  # the last of the 8 transfers came after sample 56
    for b in m.banks:
        lvl = torch.bitwise_right_shift(b.hidden.abs(), 6) * torch.where(b.hidden < 0, -1, 1)
        assert torch.equal(b.analogue, lvl.float() * b.level_step)
        assert b.hidden.abs().max() <= 511


def test_transfers_happen_every_k_samples():
    m = _run([0], "hm", "numba", steps=60)
    assert all(int(b.transfers[0]) == 60 // 7 for b in m.banks)
    # between transfers the analogue weights lag the hidden ones: not equal to the current levels
    m.train_step(torch.rand(1, 20), torch.tensor([1]))  # step 61: no transfer (61 % 7 != 0)
    assert int(m.banks[0].transfers[0]) == 8


@pytest.mark.parametrize("mode", ["fp", "hm"])
def test_minibatch_backends_agree(mode):
    spec = NetworkSpec(sizes=(20, 16, 4), norm="batch")
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.rand(2, 5, 20, generator=g) * 2 - 1, torch.randint(0, 4, (2, 5), generator=g)
    out = []
    for backend in ("numba", "torch"):
        m = HybridMLP(spec, [0, 1], mode=mode, rule=RuleConfig(k=10, lr=0.5), backend=backend)
        m.reset_parameters()
        for _ in range(7):
            m.train_step(xs, ys)
        out.append(m)
        # k = 10 inputs, batch 5: a transfer every 2 steps
        assert int(m.banks[0].transfers[0]) == (3 if mode != "fp" else 0)
    for a, b in zip(out[0].banks, out[1].banks):
        assert torch.equal(a.effective_weight(), b.effective_weight())
