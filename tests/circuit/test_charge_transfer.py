import dataclasses

import pytest
import torch
from hypothesis import given, settings, strategies as st

from ferristor.circuit.charge_transfer import (PAPER_LEVEL_MEANS_US, PAPER_POOLED_SIGMA_US, ChargeTransferConfig,
                                               CircuitTransfer, calibrate, calibrate_from_csv, conductance_to_weight,
                                               level_statistics, msb_bits, read_measurements_csv, tl_voltage,
                                               tl_voltage_vs_area)
from ferristor.circuit.transfer import GeneratorNoise, TableTransfer, TransferConfig, make_transfer
from ferristor.errors import DataError
from ferristor.physics.presets import Martemucci2025, martemucci2025

TARGET = torch.tensor(PAPER_LEVEL_MEANS_US, dtype=torch.float64)


@pytest.mark.parametrize("cfg", [ChargeTransferConfig(), martemucci2025()], ids=["defaults", "preset"])
def test_calibration_targets_hold(cfg):
    """Fig. 4 / digest §3: level means within 1 µS, pooled σ = 8.7 ± 0.5 µS."""
    mu, _, pooled = level_statistics(cfg, n_per_level=20000, seed=7)
    assert float((mu - TARGET).abs().max()) < 1.0, mu
    assert abs(pooled - PAPER_POOLED_SIGMA_US) < 0.5


def test_preset_only_pins_defaults_and_cites_the_paper():
    assert issubclass(Martemucci2025, ChargeTransferConfig)
    assert "Nature Electronics" in Martemucci2025.__doc__
    assert martemucci2025().transistor == ChargeTransferConfig().transistor
    assert martemucci2025().memristor == ChargeTransferConfig().memristor


def test_tl_voltage_spans_half_to_one_and_a_half_volt_and_is_linear_in_area():
    cfg = ChargeTransferConfig()
    v = tl_voltage(msb_bits(torch.arange(8)), torch.ones(8, 7, dtype=torch.float64), cfg)
    assert 0.45 < float(v[0]) < 0.55 and 1.45 < float(v[7]) < 1.65  # digest §3: ≈0.5–1.5 V
    steps = v[1:] - v[:-1]
    assert torch.allclose(steps, steps[0].expand(7), rtol=1e-9)  # 4:2:1 areas → equal steps
    assert torch.allclose(tl_voltage_vs_area(torch.arange(8.), cfg), v, rtol=1e-12)


def test_msb_bits_copy_each_bit_into_its_cells():
    assert msb_bits(torch.tensor([5])).tolist() == [[1, 1, 1, 1, 0, 0, 1]]


@settings(max_examples=40, deadline=None)
@given(g=st.lists(st.floats(0, 200), min_size=1, max_size=20), signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=20, max_size=20))
def test_weight_sign_never_flips_and_scale_is_0_to_7(g, signs):
    gt = torch.tensor(g, dtype=torch.float64)
    s = torch.tensor(signs[:len(g)], dtype=torch.float64)
    w = conductance_to_weight(gt, s, PAPER_LEVEL_MEANS_US)
    assert bool((w * s >= 0).all())
    ends = conductance_to_weight(torch.tensor([1.4, 103.9], dtype=torch.float64), torch.ones(2), PAPER_LEVEL_MEANS_US)
    assert torch.allclose(ends, torch.tensor([0.0, 7.0], dtype=torch.float64))


def _program_many(model, n=6000, seed=0):
    mag = torch.arange(8).repeat_interleave(n)[None]
    sign = torch.ones_like(mag, dtype=torch.float32)
    return model.program(sign, mag, GeneratorNoise([torch.Generator().manual_seed(seed)])).view(8, n).double()


def test_circuit_and_table_level_distributions_match():
    """The table model (measured means, σ = 0.594) and the circuit agree in means and pooled σ on
    levels 1–7. Level 0 differs by design: the table clips a σ = 0.594 Gaussian at 0 (mean 0.24),
    the circuit leaves the device in the narrow LCS (mean ≈ 0.02)."""
    circ = _program_many(CircuitTransfer(martemucci2025()))
    table = _program_many(TableTransfer(TransferConfig(model="table", level_means="measured")))
    assert float((circ.mean(1) - table.mean(1))[1:].abs().max()) < 0.08  # 0.08 level ≈ 1.2 µS
    assert float(circ[0].mean()) < 0.05 and float(circ[0].std()) < 0.05
    assert abs(float(circ[1:].var(1).mean().sqrt()) - float(table[1:].var(1).mean().sqrt())) < 0.08


def test_make_transfer_builds_the_circuit_and_replicas_use_their_own_generator():
    model = make_transfer(TransferConfig(model="circuit"))
    assert isinstance(model, CircuitTransfer)
    mag = torch.randint(0, 8, (3, 50), generator=torch.Generator().manual_seed(1))
    sign = torch.where(torch.rand(3, 50) < 0.5, -1.0, 1.0)
    a = model.program(sign, mag, GeneratorNoise([torch.Generator().manual_seed(s) for s in (1, 2, 3)]))
    b = model.program(sign, mag, GeneratorNoise([torch.Generator().manual_seed(s) for s in (1, 9, 3)]))
    assert a.dtype == torch.float32 and a.shape == (3, 50)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and not torch.equal(a[1], b[1])
    assert bool((a * sign >= 0).all())
    with pytest.raises(ValueError, match="one generator per replica"):
        model.program(sign, mag, None)


def test_recalibration_from_a_users_csv(tmp_path):
    """A device 20 % weaker with σ = 6 µS: the re-fitted chain reproduces it."""
    g = torch.Generator().manual_seed(11)
    means = [0.8 * m + 0.3 for m in PAPER_LEVEL_MEANS_US]
    rows = ["level,conductance_uS"]
    for lvl, m in enumerate(means):
        sd = 0.3 if lvl == 0 else 6.0 * (1 + 0.1 * lvl) / 1.4
        x = torch.randn(400, generator=g, dtype=torch.float64).clamp(-1.5, 1.5)  # no negative conductance
        x = (x - x.mean()) / x.std()
        rows += [f"{(-1) ** k * lvl},{m + sd * float(v):.5f}" for k, v in enumerate(x)]
    path = tmp_path / "measured.csv"
    path.write_text("\n".join(rows) + "\n")
    got_means, got_sigma = read_measurements_csv(path)
    assert got_means == pytest.approx(means, abs=1e-3)
    cfg = calibrate_from_csv(path, n_per_level=3000)
    mu, _, pooled = level_statistics(cfg, n_per_level=10000, seed=3)
    assert float((mu - torch.tensor(means, dtype=torch.float64)).abs().max()) < 1.0
    assert abs(pooled - got_sigma) < 0.5
    assert cfg.reference_means_us == pytest.approx(means, abs=1e-4)


@pytest.mark.parametrize("text", ["a,b\n1,2\n", "level,conductance_uS\n0,1\n0,2\n2,5\n2,6\n", "level,conductance_uS\nx,1\n",
                                  "level,conductance_uS\n" + "".join(f"{lv},{lv + 1}\n{-lv},{-lv - 1}\n" for lv in range(8))])
def test_bad_csv_is_a_data_error(tmp_path, text):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError):
        read_measurements_csv(p)


def _good_rows() -> list[str]:
    """Two rows per level 0…7, near the paper's means: a file read without complaint."""
    return [f"{lv},{m + d:.2f}" for lv, m in enumerate(PAPER_LEVEL_MEANS_US) for d in (-0.5, 0.5)]


@pytest.mark.parametrize("header, bad_row, line, message", [
    # a decimal comma: '3,12,5' had been read as level 3, 12 µS, its ',5' dropped without a word
    ("level,conductance_uS", "3,12,5", 4, "row 4: 3 fields where the header has 2 (level,conductance_uS): "
                                          "a decimal comma splits a value in two — write 12.5, not 12,5"),
    ("level,conductance_uS,note", "3,12", 3, "row 3: 2 fields where the header has 3 (level,conductance_uS,note): "
                                            "give every column a value")])
def test_a_row_of_more_or_fewer_fields_than_the_header_is_refused(tmp_path, header, bad_row, line, message):
    extra = ",x" if header.endswith("note") else ""
    rows = [r + extra for r in _good_rows()]
    p = tmp_path / "m.csv"
    p.write_text("\n".join([header, rows[0], "", bad_row, *rows[1:]]) + "\n")  # the blank line 3 is no row
    if line == 3:
        p.write_text("\n".join([header, rows[0], bad_row, *rows[1:]]) + "\n")
    with pytest.raises(DataError) as e:
        read_measurements_csv(p)
    assert str(e.value) == f"{p}: {message}"
    p.write_text("\n".join([header, *rows]) + "\n")  # the same file without that row is read
    assert len(read_measurements_csv(p)[0]) == 8


def test_preset_is_what_the_calibration_routine_fits():
    """The fitted numbers pinned in the preset are reproducible with calibrate() (seed 2025),
    starting from a deliberately wrong transistor and G(Icc) curve."""
    from ferristor.physics.memristor import MemristorConfig, SwitchingCurveConfig
    from ferristor.physics.transistor import AccessTransistorConfig
    wrong = dataclasses.replace(ChargeTransferConfig(), transistor=AccessTransistorConfig(vth_v=1.4, alpha=1.5, smoothing_v=0.1),
                                memristor=MemristorConfig(curve=SwitchingCurveConfig(g_max_us=150.0, i_knee_ua=60.0,
                                                                                     sigma_d2d=0.05, sigma_c2c=0.05)))
    fit = calibrate(PAPER_LEVEL_MEANS_US, PAPER_POOLED_SIGMA_US, wrong, n_per_level=10000, seed=2025)
    p = martemucci2025()
    for got, want in [(fit.transistor.vth_v, p.transistor.vth_v), (fit.transistor.alpha, p.transistor.alpha),
                      (fit.transistor.smoothing_v, p.transistor.smoothing_v), (fit.memristor.curve.g_max_us, p.memristor.curve.g_max_us),
                      (fit.memristor.curve.i_knee_ua, p.memristor.curve.i_knee_ua), (fit.memristor.curve.sigma_c2c, p.memristor.curve.sigma_c2c)]:
        assert got == pytest.approx(want, rel=0.01)


@pytest.mark.parametrize("means,sigma,n,seed", [
    # good data as G+ − G−, level 0 offset by 1.9 µS: a converged fit took a NaN step (L-BFGS's line search on a flat loss)
    ([1.91, 10.81, 31.37, 46.84, 61.04, 74.13, 83.88, 94.13], 6.64, 4000, 0),
    # a flat valley of the loss: α → 20, V_th → −7.7 V, I_knee → ∞ trade against each other
    ([-0.37, 14.95, 22.48, 42.35, 56.57, 68.14, 82.46, 92.2], 7.23, 200, 3)], ids=["nan step", "flat valley"])
def test_a_differential_fit_stays_finite_and_in_range(means, sigma, n, seed):
    """Both had raised a ConfigError (vth_v=nan; alpha=20.3) though the chain reproduces them within range."""
    from ferristor.physics.transistor import AccessTransistorConfig
    fit = calibrate(means, sigma, n_per_level=n, seed=seed, differential=True)
    AccessTransistorConfig(**dataclasses.asdict(fit.transistor))  # every setting allowed
    got, _, pooled = level_statistics(fit, 4000, seed=9, differential=True)
    assert float((got - torch.tensor(means, dtype=torch.float64))[1:].abs().max()) < 4.0  # µS, of a 92 µS span
    assert abs(pooled - sigma) < 1.0


def test_the_settings_training_does_not_read_are_exactly_those_listed():
    """Every numeric leaf of the chain, nudged: it changes the programmed weights iff it is not in
    NOT_READ_BY_TRANSFER (so the 'has no effect' warning is never wrong, nor missing). g_mid, the
    endurance window's centre, moves them by rounding only (the window is open at no cycles)."""
    import dataclasses

    from ferristor.circuit.charge_transfer import NOT_READ_BY_TRANSFER, changed_settings
    from ferristor.circuit.transfer import GeneratorNoise
    from ferristor.sweeps.configs import build

    def leaves(d, pre=""):
        for k, v in d.items():
            yield from leaves(v, f"{pre}{k}.") if isinstance(v, dict) else [(pre + k, v)]
    mag = torch.arange(8).repeat(2, 40)
    sign = torch.ones_like(mag, dtype=torch.float32)

    def weights(cfg):
        return CircuitTransfer(cfg).program(sign, mag, GeneratorNoise([torch.Generator().manual_seed(s) for s in (1, 2)]))
    ref = weights(ChargeTransferConfig())
    checked = 0
    for path, v in leaves(dataclasses.asdict(ChargeTransferConfig())):
        if isinstance(v, (str, bool)):
            assert any(path.startswith(p + ".") for p in NOT_READ_BY_TRANSFER), path  # the model choices are of unread parts
            continue
        nudged = tuple(x * 1.05 + 0.1 for x in v) if isinstance(v, tuple) else v + 1 if isinstance(v, int) else v * 1.05 or 0.01
        d = dataclasses.asdict(ChargeTransferConfig())
        *heads, last = path.split(".")
        node = d
        for h in heads:
            node = node[h]
        node[last] = nudged
        cfg = build(d, ChargeTransferConfig)
        listed = [p for p, _ in changed_settings(cfg)] == [path]
        moved = not torch.allclose(weights(cfg), ref, rtol=1e-6, atol=1e-9)
        assert moved != listed, f"{path}: moves the weights: {moved}, listed as not read: {listed}"
        checked += 1
    assert checked > 40


def test_the_quantile_sampler_draws_what_the_chain_draws():
    """Per level, weights of the tabulated chain and of the chain itself: the same distribution (two
    samples of 20,000: the Kolmogorov–Smirnov distance under 0.03, where 1.95·√(2/n) = 0.0195 is
    its 0.1 % tail), every level's mean within 4 standard errors (both samples and the table's own
    16,384 draws), and the sign applied."""
    import numpy as np

    from ferristor.circuit.charge_transfer import QuantileCircuitTransfer
    from ferristor.circuit.transfer import CounterNoise
    keys = np.arange(8, dtype=np.uint32).reshape(4, 2)
    mag = torch.arange(8).view(1, 8, 1).expand(4, 8, 5000).contiguous()
    sign = torch.ones(mag.shape)
    quant = QuantileCircuitTransfer(draws=16384).program(sign, mag, CounterNoise(keys, 3))
    chain = CircuitTransfer().program(sign, mag, CounterNoise(keys, 3))
    for level in range(8):
        a, b = quant[:, level].flatten().sort().values, chain[:, level].flatten().sort().values
        grid = torch.cat([a, b]).sort().values
        ks = (torch.searchsorted(a, grid, right=True) - torch.searchsorted(b, grid, right=True)).abs().max() / a.numel()
        assert ks < 0.03, (level, float(ks))
        se = float(b.std()) * (2 / a.numel() + 1 / 16384) ** 0.5
        assert abs(float(a.mean() - b.mean())) < 4 * se, (level, float(a.mean() - b.mean()), se)
    assert float(quant.min()) >= 0.0
    neg = QuantileCircuitTransfer(draws=16384).program(-sign, mag, CounterNoise(keys, 3))
    assert torch.equal(neg, -quant)


def test_the_quantile_sampler_is_a_pure_function_of_config_and_counter():
    import numpy as np

    from ferristor.circuit.charge_transfer import QuantileCircuitTransfer, quantile_table
    from ferristor.circuit.layout import PAPER_LAYOUT
    from ferristor.circuit.transfer import CounterNoise
    keys = np.arange(4, dtype=np.uint32).reshape(2, 2)
    mag = torch.randint(0, 8, (2, 30, 20), generator=torch.Generator().manual_seed(0))
    sign = torch.ones(mag.shape)
    one = QuantileCircuitTransfer(draws=4096).program(sign, mag, CounterNoise(keys, 5))
    again = QuantileCircuitTransfer(draws=4096).program(sign, mag, CounterNoise(keys, 5))
    other = QuantileCircuitTransfer(draws=4096).program(sign, mag, CounterNoise(keys, 6))
    assert torch.equal(one, again) and not torch.equal(one, other)
    table = quantile_table(ChargeTransferConfig(), PAPER_LAYOUT, 4096, 0)
    assert table.shape == (8, QuantileCircuitTransfer.Z_STEPS + 1)
    assert bool((table[:, 1:] >= table[:, :-1]).all())  # a quantile function: non-decreasing
    wide = dataclasses.replace(ChargeTransferConfig(), memristor=dataclasses.replace(
        ChargeTransferConfig().memristor, curve=dataclasses.replace(ChargeTransferConfig().memristor.curve, sigma_c2c=0.3)))
    spread = QuantileCircuitTransfer(wide, draws=4096).table
    assert float((spread[7, -1] - spread[7, 0])) > float(table[7, -1] - table[7, 0])  # the config reaches the table


def test_differential_values_count_by_the_selected_device(tmp_path):
    """A g_diff_uS column is G+ − G−: a negative level's value is the selected device's with its sign
    flipped, and a negative value of level 0 is noise, not an error."""
    from ferristor.circuit.charge_transfer import read_transfer_measurements
    p = tmp_path / "fig4.csv"
    p.write_text("level,g_diff_uS\n" + "".join(f"{lv},{10 * lv + 1}\n{-lv},{-10 * lv - 2}\n" for lv in range(1, 8))
                 + "0,-0.5\n0,0.5\n")
    levels, differential = read_transfer_measurements(p)
    assert differential and levels[0] == [-0.5, 0.5] and levels[3] == [31.0, 32.0]
    with pytest.raises(DataError, match="differential values .* not the selected device's conductances"):
        read_measurements_csv(p)  # the conductance API: G+ − G− read as conductances would fit a wrong chain
    q = tmp_path / "abs.csv"
    q.write_text("level,conductance_uS\n" + "".join(f"{lv},{10 * lv + d}\n" for lv in range(8) for d in (1, 2)))
    assert read_transfer_measurements(q)[1] is False


def test_the_differential_statistics_are_those_of_a_pair():
    from ferristor.circuit.charge_transfer import differential_statistics
    g = torch.Generator().manual_seed(0)
    sel = torch.stack([torch.randn(200000, generator=g, dtype=torch.float64) * s + m
                       for m, s in ((1.0, 0.5), (30.0, 4.0), (90.0, 8.0))])
    other = torch.randn(3, 200000, generator=g, dtype=torch.float64) * 0.5 + 1.0  # the pair's G− at level 0
    mean, var = differential_statistics(sel.mean(1), sel.var(1))
    assert torch.allclose(mean, (sel - other).mean(1), atol=0.05) and torch.allclose(var, (sel - other).var(1), rtol=0.02)


def test_a_spreadsheets_byte_order_mark_is_read_past(tmp_path):
    from ferristor.circuit.charge_transfer import read_level_measurements
    p = tmp_path / "excel.csv"
    p.write_text("\ufefflevel,conductance_uS\n" + "".join(f"{lv},{10 * lv + d}\n" for lv in range(8) for d in (1, 2)),
                 encoding="utf-8")
    assert read_level_measurements(p)[3] == [31.0, 32.0]


def test_a_chain_that_programs_no_distinguishable_levels_warns_once():
    """A threshold voltage above the line's (or a unit slip) had left all 8 levels at ~0.9 µS: every
    weight read as one value, and training ran to chance with a normal-looking summary. Now building
    the transfer warns, once per chain, naming the level means; the calibrated chain and the SET
    spreads of RESULTS.md's sweep (up to σ = 0.8) do not warn."""
    import warnings

    from ferristor.circuit import transfer as T
    from ferristor.circuit.charge_transfer import chain_problem
    from ferristor.circuit.transfer import TransferConfig, make_transfer
    from ferristor.errors import FerristorWarning
    base = ChargeTransferConfig()
    flat = dataclasses.replace(base, transistor=dataclasses.replace(base.transistor, vth_v=3.0))
    assert "do not rise with the level" in chain_problem(flat)
    wrong_ref = dataclasses.replace(base, reference_means_us=tuple(float(i) for i in range(1, 9)))
    assert "span" in chain_problem(wrong_ref) and "15×" in chain_problem(wrong_ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sigma in (0.0813, 0.4, 0.8):
            curve = dataclasses.replace(base.memristor.curve, sigma_d2d=sigma, sigma_c2c=sigma)
            assert chain_problem(dataclasses.replace(base, memristor=dataclasses.replace(base.memristor, curve=curve))) is None
        make_transfer(TransferConfig(model="circuit"))
    T._CHECKED.clear()
    with pytest.warns(FerristorWarning, match=r"level means \(0\.8.*do not rise.*ferristor device calibrate"):
        make_transfer(TransferConfig(model="circuit", circuit=flat))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_transfer(TransferConfig(model="circuit", circuit=flat, circuit_sampler="quantiles", circuit_table_draws=1024))


def _no_fit(monkeypatch):
    def fit(*a, **kw):
        raise AssertionError("the fit ran before its targets were checked")
    monkeypatch.setattr(torch.optim, "LBFGS", fit)


@pytest.mark.parametrize("means, sigma, differential, message", [
    # the paper's levels in siemens: the whole fit had run, then failed on its weight scale rounded to 0.0 µS
    ([m * 1e-6 for m in PAPER_LEVEL_MEANS_US], 8.7e-6, False, r"^means_us=\[1\.4e-06.*in siemens\? give µS \(the values × 1e6"),
    ([m * 1e-6 for m in PAPER_LEVEL_MEANS_US], 8.7, True, r"in siemens\?"),
    ([m * 1e3 for m in PAPER_LEVEL_MEANS_US], 8700.0, False, r"^means_us=\[1400\.0.*in nanosiemens\? give µS \(the values ÷ 1000"),
    # decreasing: had been refused after the fit, by its weight scale
    (PAPER_LEVEL_MEANS_US[::-1], 8.7, False, r"^means_us=\[103\.9.*level 1 \(95\.9 µS\) is not above level 0 \(103\.9 µS\)"),
    ([-1.0, *PAPER_LEVEL_MEANS_US[1:]], 8.7, False, r"a conductance is ≥ 0.*differential=True"),
    ([1.0, float("nan"), *PAPER_LEVEL_MEANS_US[2:]], 8.7, False, r"expected finite numbers"),
    (PAPER_LEVEL_MEANS_US[:5], 8.7, False, r"^means_us=\(1\.4, .*expected 8 level means in µS"),
    ("12345678", 8.7, False, r"^means_us='12345678' is not allowed"),
    (PAPER_LEVEL_MEANS_US, float("nan"), False, r"^sigma_us=nan: expected a finite number ≥ 0 \(µS\)"),
    (PAPER_LEVEL_MEANS_US, -1, False, r"^sigma_us=-1\.0"),
    (PAPER_LEVEL_MEANS_US, 8.7e3 * 1e3, False, r"^sigma_us=8700000\.0: it is .*in nanosiemens\?"),
    (PAPER_LEVEL_MEANS_US, "8.7", False, r"^sigma_us='8\.7' is not allowed"),
], ids=["siemens", "siemens, differential", "nanosiemens", "decreasing", "negative", "nan", "5 levels", "a text",
        "sigma nan", "sigma negative", "sigma nanosiemens", "sigma a text"])
def test_calibrate_checks_its_targets_before_the_fit(monkeypatch, means, sigma, differential, message):
    from ferristor.errors import ConfigError
    _no_fit(monkeypatch)
    with pytest.raises(ConfigError, match=message):
        calibrate(means, sigma, n_per_level=200, differential=differential)


def test_calibrate_takes_its_targets_as_any_sequence_of_numbers():
    import numpy as np
    a = calibrate(PAPER_LEVEL_MEANS_US, PAPER_POOLED_SIGMA_US, n_per_level=200)
    b = calibrate(np.array(PAPER_LEVEL_MEANS_US), torch.tensor(PAPER_POOLED_SIGMA_US), n_per_level=200)
    assert a == b


def test_a_chain_offset_from_the_weight_scale_says_what_its_weights_read():
    """A transfer line of 0.4 fF (pF meant, or 400 fF) puts the level means at 150…184 µS against the
    reference's 1.4…104: the warning had said "compressed towards one value", where every weight, a zero
    one included, reads 10 to 12.5 levels, beyond the top level; 200 fF (level 0 reading 3 levels) had
    not warned at all."""
    from ferristor.circuit.charge_transfer import chain_problem
    base = ChargeTransferConfig()

    def line(c_tl_ff):
        return dataclasses.replace(base, line=dataclasses.replace(base.line, c_tl_ff=c_tl_ff))

    def shifted(by):
        return dataclasses.replace(base, reference_means_us=tuple(x + by for x in base.reference_means_us))
    thin = chain_problem(line(0.4))
    assert "every weight reads above the top level, a zero one included" in thin and "compressed" not in thin
    assert "level 0 reads as weight 10.1, level 7 as 12.5" in thin and "saturate at 10.1 … 12.5 levels" in thin
    assert "every weight reads at least 3.1 levels, a zero one included" in chain_problem(line(200.0))
    assert "every weight reads 4.1 levels low" in chain_problem(shifted(60.0))
    assert "every weight reads 0" in chain_problem(shifted(200.0))
    assert chain_problem(line(300.0)) is None  # level 0 reads 0.5: within a level
