"""The fast step (one compiled call per sample, no autograd engine) is the plain loop, bit for bit."""
import numpy as np
import pytest
import torch

import ferristor.nn.functional as nnF
from ferristor.experiments import fast_step
from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec, train_cpu
from ferristor.optim import HybridSGD


def _data(n, features, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, 3, features, generator=g) * 2 - 1  # (steps, R, B, features)
    y = torch.randint(0, classes, (n, 2, 3), generator=g)
    return x, y


@pytest.mark.parametrize("output,sizes,norm", [("softmax", (12, 9, 7, 4), "layer"), ("sigmoid", (6, 11, 1), "none")])
@pytest.mark.parametrize("mode", ["fp", "hm-var"])
@pytest.mark.parametrize("bias", [False, True])
def test_fast_step_equals_the_plain_loop(output, sizes, norm, mode, bias):
    spec = NetworkSpec(sizes=sizes, norm=norm, output=output, bias=bias)
    loss_fn = nnF.cross_entropy if output == "softmax" else nnF.binary_cross_entropy_with_logits
    xs, ys = _data(25, sizes[0], sizes[-1] if output == "softmax" else 2)
    models = []
    for fast in (True, False):
        m = HybridMLP(spec, config=HybridConfig(mode=mode), replicas=2, seeds=[5, 6])
        opt = HybridSGD(m.parameters(), lr=0.3, p=0.6, k=4)
        losses = []
        for x, y in zip(xs, ys):
            if fast:
                assert fast_step.applies(m, opt, True, x)
                losses.append(float(fast_step.step(m, opt, x, y)))
            else:
                loss = loss_fn(m(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        models.append((m, losses))
    (a, la), (b, lb) = models
    assert la == lb
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_loss_matches_torch_to_rounding():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 10, generator=g, requires_grad=True)
    y = torch.randint(0, 10, (2, 5), generator=g)
    ours = nnF.cross_entropy(z, y)
    ours.backward()
    zt = z.detach().clone().requires_grad_(True)
    theirs = torch.nn.functional.cross_entropy(zt.reshape(-1, 10), y.reshape(-1), reduction="sum") / 5
    theirs.backward()
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(z.grad, zt.grad)
    # one chip, a batch: F.cross_entropy's mean
    torch.testing.assert_close(nnF.cross_entropy(z[0], y[0]), torch.nn.functional.cross_entropy(z[0], y[0]))
    s = torch.randn(7, 1, generator=g)
    t = torch.randint(0, 2, (7,))
    torch.testing.assert_close(nnF.binary_cross_entropy_with_logits(s, t),
                               torch.nn.functional.binary_cross_entropy_with_logits(s[:, 0], t.float()))


@pytest.mark.parametrize("schedule", ["rows", "replicas"])
@pytest.mark.parametrize("mode,sampler,k,at_once,output,bias", [
    ("hm-var", "dense", 7, True, "softmax", False), ("hm-var", "dense", 150, True, "softmax", False),
    ("hm-var", "sparse", 7, True, "softmax", False), ("fp", "sparse", 7, False, "softmax", False),
    ("hm", "dense", 150, True, "softmax", False), ("hm-var", "dense", 150, False, "softmax", False),
    ("hm-var", "dense", 150, True, "sigmoid", False),
    ("hm-var", "dense", 150, True, "softmax", True), ("fp", "dense", 7, False, "softmax", True),
    ("hm-var", "sparse", 7, True, "sigmoid", True)])
def test_compiled_chunks_equal_the_plain_loop(mode, sampler, k, at_once, output, bias, schedule, monkeypatch):
    """``fast_step.run`` at batch 1: chunks of steps in one compiled call, back in Python for each
    transfer (every k steps) and event flush (every 250 steps), equal the plain loop bit for bit —
    losses, weights, hidden integers, event counts, transfer and update counters, the optimizer's
    state — with each step's rows or whole replicas split over the threads. k = 7: chunks too short
    to gain from running the hidden updates together; k = 150: chunks of 3, 147, 100 and 13 steps,
    whose updates run together in segments of 49, 50 and 13 steps (``train_cpu._segment_length``).
    Hybrid networks run each segment's passes at once (``at_once``; fp's weights change every
    step), cut into three parts per replica on the rows split; False: step by step. ``sigmoid``:
    one logit with binary cross-entropy and no LayerNorm (the ECG network's output). ``bias``: a bias
    column per layer — its own update entry, counters and transfers in the chunks."""
    monkeypatch.setattr(fast_step, "by_replica", lambda n, threads=None, passes_at_once=False: schedule == "replicas")
    monkeypatch.setattr(fast_step, "_threads", lambda: 3)  # 2 replicas, 3 threads: each replica's steps in 3 parts
    monkeypatch.setattr(train_cpu, "BLOCK_PASSES", at_once)
    sigmoid = output == "sigmoid"
    spec = NetworkSpec(sizes=(12, 9, 7, 1 if sigmoid else 4), output=output, norm="none" if sigmoid else "layer",
                       bias=bias)
    loss_fn = nnF.binary_cross_entropy_with_logits if sigmoid else nnF.cross_entropy
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(40, 12, generator=g) * 2 - 1, torch.randint(0, 2 if sigmoid else 4, (40,), generator=g)
    idx = torch.stack([torch.randperm(40, generator=g).repeat(7)[:263] for _ in range(2)])  # (R, steps)
    runs = []
    for chunked in (True, False):
        m = HybridMLP(spec, config=HybridConfig(mode=mode), replicas=2, seeds=[5, 6])
        opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=k, sampler=sampler)
        if chunked:
            assert fast_step.applies(m, opt, True, x[idx[:, :1]])
            chunk = fast_step._Chunk(m, opt, {id(p): g for g in opt.param_groups for p in g["params"]})
            assert train_cpu.passes_at_once(chunk.consts[0]) == at_once
            assert chunk.in_graph == (mode != "fp")  # the transfers run inside the chunks
            loss = [fast_step.run(m, opt, x.numpy(), y.numpy(), idx[:, a:b].numpy()) for a, b in ((0, 3), (3, 263))][-1]
        else:
            for t in range(idx.shape[1]):
                out = loss_fn(m(x[idx[:, t:t + 1]]), y[idx[:, t:t + 1]])
                opt.zero_grad()
                out.backward()
                opt.step()
            loss = float(out.detach())
        runs.append((m, opt, loss))
    (a, oa, la), (b, ob, lb) = runs
    assert la == lb
    for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(u, v), name
    assert int(a.layers[0].weight_updates) == 263 and (mode == "fp" or int(a.layers[0].weight_transfers[0]) == 263 // k)
    if bias:
        assert int(a.layers[2].bias_updates) == 263 and (mode == "fp" or int(a.layers[2].bias_transfers[1]) == 263 // k)
        assert int(a.layers[2].bias_events.sum()) > 0
    assert oa.state_dict()["state"] == ob.state_dict()["state"]


def _count_chunk_calls(monkeypatch) -> list:
    calls = []
    for name in ("mlp_train_chunk_by_replica", "mlp_train_chunk_dense", "mlp_train_chunk"):
        kernel = getattr(train_cpu, name)
        monkeypatch.setattr(train_cpu, name, lambda *a, _k=kernel: calls.append(1) or _k(*a))
    return calls


@pytest.mark.parametrize("schedule", ["rows", "replicas"])
@pytest.mark.parametrize("mode,k,bias", [("hm-var", 1, True), ("hm", 1, False), ("hm-var", 5, False),
                                         ("hm", 150, True)])
def test_transfers_inside_the_chunks_equal_chunks_that_end_at_them(mode, k, bias, schedule, monkeypatch):
    """A chunk that returned to Python for every transfer ran k steps per call: one at k = 1. The
    chunks now run the table transfer themselves, after the step where it falls due, at the counter
    ``program_`` would use, and return to Python only to flush the event counters (every 250 steps):
    the same bits as chunks that end at every transfer — weights, hidden integers, counts, counters
    and the optimizer's state — in 3 calls for 263 steps instead of one per transfer."""
    monkeypatch.setattr(fast_step, "by_replica", lambda n, threads=None, passes_at_once=False: schedule == "replicas")
    monkeypatch.setattr(fast_step, "_threads", lambda: 3)
    calls = _count_chunk_calls(monkeypatch)
    spec = NetworkSpec(sizes=(12, 9, 7, 4), bias=bias)
    g = torch.Generator().manual_seed(1)
    x, y = (torch.rand(40, 12, generator=g) * 2 - 1).numpy(), torch.randint(0, 4, (40,), generator=g).numpy()
    idx = torch.stack([torch.randperm(40, generator=g).repeat(7)[:263] for _ in range(2)]).numpy()
    runs = []
    for inside in (True, False):
        monkeypatch.setattr(fast_step, "TRANSFERS_IN_CHUNKS", inside)
        m = HybridMLP(spec, config=HybridConfig(mode=mode), replicas=2, seeds=[5, 6])
        opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=k)
        calls.clear()
        losses = [fast_step.run(m, opt, x, y, idx[:, a:b]) for a, b in ((0, 3), (3, 263))]
        runs.append((m, opt, losses, len(calls)))
    (a, oa, la, ca), (b, ob, lb, cb) = runs
    assert la == lb
    for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(u, v), name
    assert oa.state_dict()["state"] == ob.state_dict()["state"]
    assert int(a.layers[0].weight_transfers[0]) == 263 // k
    assert not bias or int(a.layers[2].bias_transfers[1]) == 263 // k
    assert ca == 3  # 3 steps, then 247 to the flush, then 13
    assert cb == len({0, 3, 250, *range(k, 263, k)})  # a chunk ends at every transfer, flush and run


@pytest.mark.parametrize("ledger,transfer", [("skip", "table"), ("all", "quantiles")])
def test_transfers_the_chunks_cannot_run_end_them(ledger, transfer):
    """A ledger that leaves unchanged levels alone, and the circuit transfer drawn from its quantile
    table, are not the fused table transfer: their chunks end where a transfer falls due and Python
    runs it, as before."""
    from ferristor.circuit.ledger import LedgerConfig
    from ferristor.circuit.transfer import TransferConfig
    cfg = HybridConfig(mode="hm-var", ledger=LedgerConfig(transfer_writes_unchanged=ledger == "all"),
                       transfer=TransferConfig(model="circuit", circuit_sampler="quantiles") if transfer == "quantiles"
                       else None)
    m = HybridMLP(NetworkSpec(sizes=(12, 9, 4)), config=cfg, replicas=1, seeds=[5])
    opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=2)
    chunk = fast_step._Chunk(m, opt, {id(p): g for g in opt.param_groups for p in g["params"]})
    assert not chunk.in_graph and not chunk.transfers[0].any()
    fast_step.run(m, opt, np.random.default_rng(0).random((10, 12), np.float32), np.arange(10) % 4, np.arange(7)[None])
    assert int(m.layers[0].weight_transfers[0]) == 3

def test_chunks_split_replicas_when_every_thread_gets_whole_ones():
    assert fast_step.by_replica(1, 1) and fast_step.by_replica(10, 2) and fast_step.by_replica(9, 2)
    assert not fast_step.by_replica(1, 2) and not fast_step.by_replica(3, 2) and not fast_step.by_replica(6, 4)
    # passes at once: rows up to 16 replicas per thread
    assert not fast_step.by_replica(10, 2, passes_at_once=True) and not fast_step.by_replica(1, 1, passes_at_once=True)
    assert fast_step.by_replica(32, 2, passes_at_once=True) and not fast_step.by_replica(31, 2, passes_at_once=True)


@pytest.mark.parametrize("mode,sampler", [("fp", "dense"), ("hm-var", "sparse")])
def test_only_dense_hybrid_chunks_take_whole_replicas(mode, sampler, monkeypatch):
    """fp's serial update ran 3× slower than its rows split (BENCHMARKS.md) and the sparse walk has no
    serial twin: their chunks split rows even where every thread could take whole replicas."""
    def refuse(*args):
        raise AssertionError("the replica split was chosen")
    monkeypatch.setattr(fast_step, "by_replica", lambda n, threads=None, passes_at_once=False: True)
    monkeypatch.setattr(train_cpu, "mlp_train_chunk_by_replica", refuse)
    m = HybridMLP(NetworkSpec(sizes=(12, 9, 4)), config=HybridConfig(mode=mode), replicas=2, seeds=[5, 6])
    opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=7, sampler=sampler)
    x, y = torch.rand(10, 12).numpy(), torch.randint(0, 4, (10,)).numpy()
    fast_step.run(m, opt, x, y, np.zeros((2, 5), np.int64))
    hm = HybridMLP(NetworkSpec(sizes=(12, 9, 4)), config=HybridConfig(mode="hm-var"), replicas=2, seeds=[5, 6])
    with pytest.raises(AssertionError, match="replica split"):
        fast_step.run(hm, HybridSGD(hm.parameters(), lr=0.3, p=0.4, k=7), x, y, np.zeros((2, 5), np.int64))


def test_segment_passes_share_replicas_evenly_over_threads():
    assert [train_cpu.passes_parts(r, 2) for r in (1, 2, 3, 10)] == [2, 1, 2, 1]
    assert train_cpu.passes_parts(1, 1) == 1 and train_cpu.passes_parts(6, 4) == 2


@pytest.mark.parametrize("kernel", ["mlp_train_chunk_by_replica", "mlp_train_chunk_dense"])
def test_the_dense_only_chunks_refuse_sparse_layers(kernel):
    """They have no sparse kernel inside: called with one, they must stop, not run the dense sampler."""
    m = HybridMLP(NetworkSpec(sizes=(12, 9, 4)), config=HybridConfig(mode="hm-var"), replicas=2, seeds=[5, 6])
    opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=7, sampler="sparse")
    chunk = fast_step._Chunk(m, opt, {id(p): g for g in opt.param_groups for p in g["params"]})
    x, y = np.zeros((3, 12), np.float32), np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="dense sampler only"):
        getattr(chunk.T, kernel)(*chunk.arguments(x, y, np.zeros((2, 1), np.int64), np.zeros(2, np.int64), True))


def test_compiled_chunks_equal_the_plain_loop_on_another_layout():
    """An 8-bit synapse with 2 analogue bits: the chunks take the layout's saturation and level shift
    from the config, as the plain loop does — the same bits, and hidden integers within ±127."""
    from ferristor.circuit.layout import SynapseLayout
    lay = SynapseLayout(hidden_bits=8, analogue_magnitude_bits=2)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(40, 12, generator=g) * 2 - 1, torch.randint(0, 4, (40,), generator=g)
    idx = torch.stack([torch.randperm(40, generator=g).repeat(7)[:263] for _ in range(2)])
    states = []
    for chunked in (True, False):
        m = HybridMLP(NetworkSpec(sizes=(12, 9, 4)), config=HybridConfig(mode="hm-var", layout=lay, hidden_lsb=2 ** -7),
                      replicas=2, seeds=[5, 6])
        opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=7)
        if chunked:
            assert fast_step.applies(m, opt, True, x[idx[:, :1]])
            fast_step.run(m, opt, x.numpy(), y.numpy(), idx.numpy())
        else:
            for t in range(idx.shape[1]):
                loss = nnF.cross_entropy(m(x[idx[:, t:t + 1]]), y[idx[:, t:t + 1]])
                opt.zero_grad()
                loss.backward()
                opt.step()
        states.append(m.state_dict())
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
    hidden = states[0]["layers.0.weight_hidden"]
    assert int(hidden.abs().max()) == 127
    assert int((hidden.abs() / 2 ** lay.level_shift).floor().max()) == 3  # the top analogue level of 2 bits


def test_compiled_chunks_check_what_a_step_checks():
    """The chunks run the rule without step(): a group value set since (as a scheduler or code would)
    and a newer HybridSGD holding the parameters are refused there too, before anything moves."""
    from ferristor.errors import ConfigError
    m = HybridMLP(NetworkSpec(sizes=(12, 9, 4)), config=HybridConfig(mode="hm"), replicas=1, seeds=[5])
    opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=7)
    x, y = torch.rand(10, 12), torch.randint(0, 4, (10,))
    idx = torch.arange(10).reshape(1, 10).numpy()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt.param_groups[0]["p"] = 0.0
    with pytest.raises(ConfigError, match=r"param_groups\[0\]\['p'\]=0.0 is not allowed"):
        fast_step.run(m, opt, x.numpy(), y.numpy(), idx)
    opt.param_groups[0]["p"] = 0.4
    newer = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=7)
    with pytest.raises(ConfigError, match="a HybridSGD built after this one holds this parameter"):
        fast_step.run(m, opt, x.numpy(), y.numpy(), idx)
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    del newer
    fast_step.run(m, opt, x.numpy(), y.numpy(), idx)  # its own again
    assert int(m.layers[0].weight_updates) == 10


def test_networks_of_any_depth_and_biases_share_one_build_of_the_chunks():
    """Each depth and each choice of biases had compiled the training chunk anew (~1 min of a first
    run each): with padded tuples (``passes_cpu.slots``) one build serves them all."""
    kernel = train_cpu.mlp_train_chunk_dense
    before = len(kernel.signatures)
    for sizes, bias in [((12, 4), False), ((12, 9, 4), False), ((12, 9, 7, 4), True), ((12, 9, 4), True)]:
        m = HybridMLP(NetworkSpec(sizes=sizes, bias=bias), config=HybridConfig(mode="hm-var"), replicas=1, seeds=[5])
        opt = HybridSGD(m.parameters(), lr=0.3, p=0.4, k=7)
        x, y = np.random.default_rng(0).random((10, 12), np.float32), np.arange(10) % 4
        fast_step.run(m, opt, x, y, np.arange(3)[None])  # all hybrid, one replica: the dense chunk
    assert len(kernel.signatures) - before <= 1
