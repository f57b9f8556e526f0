"""The baseline rules on tiny arrays, checked by hand: values, writes per device kind, and the ledger
totals equal to the events counted; save/resume bit for bit; clear errors."""
import pytest
import torch
import torch.nn.functional as F

from ferristor.errors import ConfigError
from ferristor.experiments.config import run_identity, task_config
from ferristor.config_base import to_dict
from ferristor.nn import HybridConfig, HybridLinear, HybridMLP, NetworkSpec
from ferristor.nn.ledger import device_ledger, ledger
from ferristor.optim import HybridSGD
from ferristor.rule.schemes import SchemeConfig

STEP = 1 / 8  # one memristor level in weight units: 2^6 LSBs of 2^-9 (digest §2)


def _layer(rule, n_in, n_out, **scheme):
    """An ideal-write (mode hm) layer whose pairs we set by hand: codes (O, I) logical."""
    return HybridLinear(n_in, n_out, config=HybridConfig(mode="hm", scheme=SchemeConfig(rule=rule, **scheme)), seeds=0)


def _set(layer, codes):
    codes = torch.tensor(codes, dtype=torch.float32)
    layer.weight_code.copy_(codes)
    level = torch.where(codes >= 0, codes, -1 - codes)
    layer.weight.data.copy_(torch.where(codes < 0, -level, level) * STEP)


def _update(layer, x, delta, *, lr=STEP, p=1.0, rounding="nearest"):
    """One update from the factors x (I,), δ (O,) — lr = one level, so v = −x·δ levels."""
    layer._tapes["weight"] = [(torch.tensor([[x]], dtype=torch.float32), torch.tensor([[delta]], dtype=torch.float32), None)]
    layer._inputs["weight"] = 1
    layer.hybrid_step_("weight", lr=lr, p=p, rounding=rounding)
    layer.flush_counts()


def _mem(layer):
    return ledger(layer)[0]["network"]["devices"]["kinds"]["memristor"]


def test_memristor_sgd_by_hand():
    layer = _layer("memristor-sgd", 1, 3)
    _set(layer, [[2.0], [-1.0], [6.0]])  # levels +2, 0 on G−, +6
    _update(layer, [1.0], [-1.4, 0.3, -9.0])  # v = 1.4, −0.3, 9 levels → rounded 1, 0, 9
    assert layer.weight_code[:, 0].tolist() == [3.0, -1.0, 7.0]  # +3, 0 kept on G−, saturated at +7
    assert layer.weight.detach()[:, 0].tolist() == [3 * STEP, -0.0, 7 * STEP]
    assert layer.weight_writes[:, 0].tolist() == [1, 0, 1]
    assert layer.weight_events[:, 0].tolist() == [1, 1, 1]  # update attempts: no device operation by themselves
    mem = _mem(layer)
    assert mem["roles"]["pair"]["worst"] == 2 and mem["ops"]["total"] == (2 + 0 + 2) * 2  # RESET + SET, 2 devices
    assert mem["energy_nJ"]["total"] == pytest.approx(8e-3)
    assert set(ledger(layer)[0]["network"]["devices"]["kinds"]) == {"memristor"}


def test_memristor_sgd_every_update_writes_every_masked_update():
    layer = _layer("memristor-sgd", 1, 3, write="every_update")
    _set(layer, [[2.0], [-1.0], [6.0]])
    _update(layer, [1.0], [-1.4, 0.3, -9.0])
    assert layer.weight_writes[:, 0].tolist() == [1, 1, 1]
    _update(layer, [1.0], [0.0, 0.0, 0.0], p=1e-9)  # nothing masked in: nothing written
    assert layer.weight_writes[:, 0].tolist() == [1, 1, 1]


def test_mixed_precision_by_hand():
    layer = _layer("mixed-precision", 1, 3)
    _set(layer, [[2.0], [0.0], [1.0]])
    _update(layer, [1.0], [-1.4, 0.3, 2.7])  # χ = 1.4, −0.3, −2.7 levels; nothing programmed yet
    assert layer.weight_chi[:, 0].tolist() == pytest.approx([1.4, -0.3, -2.7])
    assert layer.weight_writes.sum() == 0
    layer.program_("weight")  # the threshold transfer: n = trunc(χ/ε) = 1, 0, −2
    assert layer.weight_chi[:, 0].tolist() == pytest.approx([0.4, -0.3, -0.7], abs=1e-6)
    assert layer.weight_code[:, 0].tolist() == [3.0, 0.0, -2.0]  # +3, unchanged, −1
    assert layer.weight.detach()[:, 0].tolist() == [3 * STEP, 0.0, -STEP]
    assert layer.weight_writes[:, 0].tolist() == [1, 0, 1] and int(layer.weight_transfers) == 1
    kinds = ledger(layer)[0]["network"]["devices"]["kinds"]
    assert kinds["memristor"]["ops"]["total"] == 8 and kinds["digital"]["ops"]["total"] == 3
    assert kinds["digital"]["energy_nJ"] is None


def test_mixed_precision_epsilon_two_levels():
    layer = _layer("mixed-precision", 1, 2, epsilon=2)
    _set(layer, [[0.0], [0.0]])
    _update(layer, [1.0], [-1.9, -4.5])
    layer.program_("weight")
    assert layer.weight_code[:, 0].tolist() == [0.0, 4.0]  # |χ| < ε: kept; 4.5 → 2 steps of 2 levels
    assert layer.weight_chi[:, 0].tolist() == pytest.approx([1.9, 0.5])


def test_tiki_taka_by_hand():
    layer = _layer("tiki-taka", 2, 2, transfer_rounding="nearest")
    _set(layer, [[1.0, 0.0], [1.0, 0.0]])  # C: line 0 holds +1, +1; line 1 holds 0, 0
    _update(layer, [1.0, 0.0], [-2.3, 1.2])  # A, line 0: +2.3 → 2, −1.2 → −1; line 1 untouched
    assert layer.weight_fast_code.T.tolist() == [[2.0, -2.0], [0.0, 0.0]]
    assert layer.weight_fast.T.tolist() == [[2 * STEP, -STEP], [0.0, 0.0]]
    assert layer.weight.detach().T.tolist() == [[STEP, STEP], [0.0, 0.0]]  # γ = 0: the passes read C
    layer.program_("weight")  # line 0: C += round(A) = +2, −1; A RESET
    assert layer.weight_code.T.tolist() == [[3.0, 0.0], [0.0, 0.0]]
    assert layer.weight.detach().T.tolist() == [[3 * STEP, 0.0], [0.0, 0.0]]
    assert not layer.weight_fast.any() and not layer.weight_fast_code.any()
    assert layer.weight_fast_resets.T.tolist() == [[1, 1], [0, 0]] and int(layer.weight_cursor) == 1
    layer.program_("weight")  # line 1: A is 0 there, nothing moves
    assert int(layer.weight_cursor) == 0 and layer.weight_writes.sum() == 2
    mem = _mem(layer)
    a, c = mem["roles"]["fast pair A"], mem["roles"]["slow pair C"]
    assert a["worst"] == 2 + 1 and a["total"] == (3 + 3) * 2  # one write (RESET + SET) and one RESET
    assert c["worst"] == 2 and c["total"] == (2 + 2) * 2
    assert mem["devices"] == 4 * 4 and mem["ops"]["worst"] == 3


def test_tiki_taka_gamma_mixes_the_fast_array_into_the_weight():
    layer = _layer("tiki-taka", 1, 1, gamma=0.5)
    _set(layer, [[0.0]])
    layer.weight_slow.zero_()
    _update(layer, [1.0], [-3.0])
    assert layer.weight_fast_code.item() == 3 and layer.weight.item() == pytest.approx(0.5 * 3 * STEP)


def _train(model, opt, steps=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.rand(1, 12, generator=g) * 2 - 1
        y = torch.randint(0, 3, (1,), generator=g)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


SCHEMES = [SchemeConfig(rule="memristor-sgd"), SchemeConfig(rule="mixed-precision"), SchemeConfig(rule="tiki-taka"),
           SchemeConfig(rule="tiki-taka", gamma=0.2)]


def _make(scheme, seed=1):
    model = HybridMLP(NetworkSpec(sizes=(12, 10, 3)), config=HybridConfig(mode="hm-var", scheme=scheme), seeds=seed)
    return model, HybridSGD(model.parameters(), lr=0.3, p=0.5, k=3)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"{s.rule}-{s.gamma}")
def test_save_and_resume_is_bit_for_bit(scheme, tmp_path):
    model, opt = _make(scheme)
    _train(model, opt, 13)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.pt")
    _train(model, opt, 17, seed=1)
    saved = torch.load(tmp_path / "s.pt")
    fresh, fresh_opt = _make(scheme, seed=99)
    fresh.load_state_dict(saved["model"])
    fresh_opt.load_state_dict(saved["opt"])
    _train(fresh, fresh_opt, 17, seed=1)
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name
    assert int(model.layers[0].weight_writes.sum()) > 0


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"{s.rule}-{s.gamma}")
def test_ledger_totals_equal_the_events_counted(scheme):
    model, opt = _make(scheme)
    _train(model, opt, 30)
    rep = ledger(model)[0]
    writes = sum(int(layer.weight_writes.sum()) for layer in model.layers)
    mem_total = 2 * 2 * writes  # 2 ops (RESET + SET) on each of the pair's 2 memristors
    if scheme.rule == "tiki-taka":
        mem_total += sum(2 * 2 * int(layer.weight_fast_writes.sum()) + 2 * int(layer.weight_fast_resets.sum())
                         for layer in model.layers)
    assert rep["network"]["memristor_ops"]["total"] == mem_total > 0
    assert rep["network"]["energy_nJ"]["memristor_total"] == pytest.approx(mem_total * 1e-3)
    assert rep["network"]["fecap_ops"]["total"] == 0
    kinds = rep["network"]["devices"]["kinds"]
    if scheme.rule == "mixed-precision":
        assert kinds["digital"]["ops"]["total"] == sum(int(layer.weight_events.sum()) for layer in model.layers)
        assert int(model.layers[0].weight_transfers) == 10  # every k = 3 inputs
    assert sum(r["memristor_ops"]["total"] for r in rep["layers"]) == mem_total
    init = rep["initial_programming"]
    assert init["fecap_ops"]["total"] == 0 and init["memristor_ops"]["total"] > 0


def test_hybrid_and_fp_device_ledgers():
    model, opt = _make(SchemeConfig())
    _train(model, opt, 9)
    dev = device_ledger(model)[0]["network"]["devices"]
    ev = sum(int(layer.weight_events.sum()) for layer in model.layers)
    assert dev["kinds"]["fecap"]["ops"]["total"] == 2 * 14 * ev + 3 * 4 * 8 * (120 + 30)  # digest §5 counting
    fp = HybridMLP(NetworkSpec(sizes=(12, 10, 3)), config=HybridConfig(mode="fp"), seeds=1)
    _train(fp, HybridSGD(fp.parameters(), lr=0.3, p=0.5, k=3), 9)
    assert ledger(fp) is None
    rep = device_ledger(fp)[0]["network"]["devices"]
    assert list(rep["kinds"]) == ["digital"] and rep["energy_nJ_total"] is None
    assert rep["kinds"]["digital"]["ops"]["total"] == sum(int(layer.weight_events.sum()) for layer in fp.layers) > 0
    assert "not a device" in rep["kinds"]["digital"]["not_a_device"]


def test_memristor_sgd_has_no_periodic_transfer():
    model, opt = _make(SchemeConfig(rule="memristor-sgd"))
    _train(model, opt, 10)
    assert int(model.layers[0].weight_transfers) == 0 and int(model.layers[0].weight_writes.sum()) > 0


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match="epsilon=3: it applies to rule 'mixed-precision' only"):
        SchemeConfig(rule="tiki-taka", epsilon=3)
    with pytest.raises(ConfigError, match="rule='sgd'"):
        SchemeConfig(rule="sgd")
    with pytest.raises(ConfigError, match="scheme.rule"):
        HybridConfig(mode="fp", scheme=SchemeConfig(rule="memristor-sgd"))
    with pytest.raises(ConfigError, match="scheme.rule"):
        task_config("mnist", "fp", rule="tiki-taka")


def test_default_scheme_keeps_old_run_identities():
    cfg = to_dict(task_config("mnist", "hm"))
    assert "scheme" in cfg and "scheme" not in run_identity(cfg)
    other = to_dict(task_config("mnist", "hm", rule="memristor-sgd"))
    assert run_identity(other)["scheme"]["rule"] == "memristor-sgd"


def test_float_weights_are_programmed_as_levels():
    layer = _layer("mixed-precision", 2, 2)
    layer.weight_chi.fill_(0.5)
    layer.set_float_weights_("weight", torch.tensor([[0.26, -0.13], [0.01, -0.9]]))
    # round(w / 2^-9) then truncation to the level (digest §4 step 4): 0.26 → 133 LSB → level 2; −0.9 → −511 → −7
    assert layer.weight_code.tolist() == [[2.0, -2.0], [0.0, -8.0]]
    assert layer.weight.detach().tolist() == [[2 * STEP, -STEP], [0.0, -7 * STEP]]
    assert not layer.weight_chi.any() and not layer.weight_writes.any()


@pytest.mark.parametrize("rule", ["memristor-sgd", "mixed-precision", "tiki-taka"])
def test_the_fused_path_follows_state_replaced_after_its_views_were_cached(rule):
    """A baseline's fused update and transfer read cached numpy views of the layer's state (``SchemeRunner._arrays``):
    state loaded in place, and a rule buffer or the weight swapped for another tensor, must reach the next step."""
    from ferristor.nn.schemes import buffers

    cfg = HybridConfig(mode="hm-var", scheme=SchemeConfig(rule=rule))

    def step(layer, x):
        opt = HybridSGD(layer.parameters(), lr=0.5, p=0.5, k=1)  # a transfer every step
        out = layer(x)
        out.square().sum().backward()
        opt.step()
        return out.detach()

    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    a, b = HybridLinear(8, 4, bias=True, seeds=1, config=cfg), HybridLinear(8, 4, bias=True, seeds=2, config=cfg)
    step(a, x)  # a's views and keys are cached now
    step(b, x)
    a.load_state_dict(b.state_dict())  # b's seeds, counters and state, copied in place
    a._apply(lambda t: t.clone())  # and new tensors behind the weight and the state (as a .to() makes)
    assert torch.equal(step(a, x), step(b, x))
    for key in buffers(cfg.scheme):  # new tensors behind the rule's state alone (the layer's own views stay)
        a.register_buffer(f"weight_{key}", getattr(a, f"weight_{key}").clone())
    for _ in range(3):
        assert torch.equal(step(a, x), step(b, x))
    for k, v in b.state_dict().items():
        assert torch.equal(a.state_dict()[k], v), k
    assert int(b.weight_writes.sum()) > 0
