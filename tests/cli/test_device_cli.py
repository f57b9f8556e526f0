import csv
import dataclasses

import pytest
from click.testing import CliRunner

from ferristor.cli.device import FIGURES, device_group

HEADERS = {"fecap-read": "cell", "fecap-energy": "v_prog_V", "fecap-endurance": "condition", "memristor-icc": "icc_uA",
           "memristor-levels": "level", "memristor-endurance": "cycles", "transfer-line": "area_units",
           "transfer-levels": "level"}


def test_all_writes_every_png_and_csv_atomically(tmp_path):
    res = CliRunner().invoke(device_group, ["all", "--out", str(tmp_path), "--samples", "64", "--seed", "3"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{n}.{ext}" for n in FIGURES for ext in ("png", "csv")])  # no tmp left over
    for name, first in HEADERS.items():
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = list(csv.reader((tmp_path / f"{name}.csv").open()))
        assert rows[0][0] == first and len(rows) > 2


def test_transfer_levels_csv_has_15_levels_with_the_sign(tmp_path):
    res = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path), "--samples", "50"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "transfer-levels.csv").open()))
    levels = sorted({int(r["level"]) for r in rows})
    assert levels == list(range(-7, 8))
    assert all(float(r["g_diff_uS"]) < 0 for r in rows if int(r["level"]) <= -2)


def test_memristor_levels_draws_as_many_levels_as_level_icc_ua_holds(tmp_path):
    """The config takes any 2 or more compliance currents (training does not read them), but the figure drew 8:
    [0, 10] ended in an IndexError, and `all` with [0, 10, 20] crashed after writing some figures."""
    icc = "transfer.circuit.memristor.curve.level_icc_ua"
    res = CliRunner().invoke(device_group, ["memristor-levels", "--out", str(tmp_path / "two"), "--samples", "20",
                                            "--set", f"{icc}=[0,10]"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "two" / "memristor-levels.csv").open()))
    assert [int(r["level"]) for r in rows] == [0] * 20 + [1] * 20
    res = CliRunner().invoke(device_group, ["all", "--out", str(tmp_path / "all"), "--samples", "16", "--set", f"{icc}=[0,10,20]"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "all").iterdir())) == 2 * len(FIGURES)
    levels = {int(r["level"]) for r in csv.DictReader((tmp_path / "all" / "memristor-levels.csv").open())}
    assert levels == {0, 1, 2}


def test_out_is_required():
    res = CliRunner().invoke(device_group, ["fecap-energy"])
    assert res.exit_code != 0 and "--out" in res.output


# --- device calibrate ----------------------------------------------------------------------------

def _measured_csv(path, scale=1.0, per_level=40, seed=7):
    """A CSV of transfers drawn from the default chain, conductances × ``scale``."""
    import torch

    from ferristor.circuit.charge_transfer import ChargeTransferConfig, CircuitTransfer
    levels = torch.arange(8).repeat_interleave(per_level)
    g = CircuitTransfer(ChargeTransferConfig()).conductance(levels, torch.Generator().manual_seed(seed))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["level", "conductance_uS"])
        w.writerows([lv, round(x * scale, 4)] for lv, x in zip(levels.tolist(), g.tolist()))
    return path


def _calibrate(tmp_path, measured, out="cal", seed=3, samples=200):
    out = tmp_path / out
    res = CliRunner().invoke(device_group, ["calibrate", "--csv", str(measured), "--out", str(out),
                                            "--seed", str(seed), "--samples", str(samples)])
    return res, out


def _written_circuit(toml):
    from ferristor.sweeps.configs import resolve
    from ferristor.sweeps.spec import from_file
    return resolve(from_file(toml).base)


def test_calibrate_writes_a_spec_file_that_carries_the_fit(tmp_path):
    import dataclasses

    from ferristor.circuit.charge_transfer import calibrate, level_statistics, read_measurements_csv
    measured = _measured_csv(tmp_path / "measured.csv")
    res, out = _calibrate(tmp_path, measured)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["calibrated.csv", "calibrated.png", "calibrated.toml"]  # no tmp
    for name in ("calibrated.toml", "calibrated.csv", "calibrated.png"):
        assert str(out / name) in res.output
    assert "measured" in res.output and "fitted" in res.output and "difference" in res.output

    means, sigma = read_measurements_csv(measured)
    expected = calibrate(means, sigma, n_per_level=200, seed=3)
    cfg = _written_circuit(out / "calibrated.toml")
    assert cfg.mode == "hm-var" and cfg.transfer.model == "circuit"
    assert dataclasses.asdict(cfg.transfer.circuit) == dataclasses.asdict(expected)
    text = (out / "calibrated.toml").read_text()
    assert f"--csv {measured}" in text and "--seed 3 --samples 200" in text
    assert "ferristor train --config" in text and "ferristor sweep" in text

    rows = list(csv.DictReader((out / "calibrated.csv").open()))
    fit_means, fit_stds, fit_sigma = level_statistics(expected, 200, 4)  # seed + 1: draws the fit did not see
    assert [int(r["level"]) for r in rows] == list(range(8))
    assert [float(r["measured_mean_uS"]) for r in rows] == means
    assert [float(r["fitted_mean_uS"]) for r in rows] == fit_means.tolist()
    assert [float(r["fitted_std_uS"]) for r in rows] == fit_stds.tolist()
    assert {float(r["measured_pooled_sigma_uS"]) for r in rows} == {sigma}
    assert {float(r["fitted_pooled_sigma_uS"]) for r in rows} == {fit_sigma}
    assert all(float(r["measured_std_uS"]) > 0 and int(r["measured_n"]) == 40 for r in rows)
    assert (out / "calibrated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_fits_the_measurements_not_the_defaults(tmp_path):
    import dataclasses

    from ferristor.circuit.charge_transfer import ChargeTransferConfig
    first, _ = _calibrate(tmp_path, _measured_csv(tmp_path / "a.csv"), out="a")
    second, _ = _calibrate(tmp_path, _measured_csv(tmp_path / "b.csv", scale=0.8), out="b")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    a = _written_circuit(tmp_path / "a" / "calibrated.toml").transfer.circuit
    b = _written_circuit(tmp_path / "b" / "calibrated.toml").transfer.circuit
    assert dataclasses.asdict(a) != dataclasses.asdict(b)
    assert b.memristor.curve.g_max_us != a.memristor.curve.g_max_us
    assert b.reference_means_us[-1] < 0.85 * a.reference_means_us[-1]  # the weight scale: the measured means
    assert dataclasses.asdict(b) != dataclasses.asdict(ChargeTransferConfig())


def _rows(*pairs):
    return "level,conductance_uS\n" + "".join(f"{lv},{g}\n" for lv, g in pairs)


BAD_CSVS = {
    "missing": None,
    "columns": "lvl,g\n0,1\n1,2\n",
    "empty": "",
    "non-numeric": _rows((0, 1.0), (0, "abc")),
    "a row short": "level,conductance_uS\n0,1\n0\n",
    "not finite": _rows(*[(lv, g) for lv in range(8) for g in (10 * lv + 1, "nan")]),
    "one row a level": _rows(*[(lv, 10 * lv + 1) for lv in range(8)], *[(lv, 10 * lv + 2) for lv in range(7)]),
    "4 levels": _rows(*[(lv, 10 * lv + d) for lv in range(4) for d in (1, 2)]),
    "level 9": _rows(*[(lv, 10 * lv + d) for lv in range(8) for d in (1, 2)], (9, 95.0)),
    "decreasing": _rows(*[(lv, 100 - 10 * lv + d) for lv in range(8) for d in (1, 2)]),
    # G+ − G− steps of 0.02 µS above level 0: the fitted chain's own level means (its weight scale) do not rise
    "beyond the chain": "level,g_diff_uS\n" + "".join(f"{lv},{g + d}\n" for lv, g in enumerate([0, 0.02, 0.04, 50, 60, 70, 80, 90])
                                                      for d in (-0.01, 0.01)),
    "both kinds": "level,conductance_uS,g_diff_uS\n" + "".join(f"{lv},{lv + 1},{lv}\n" for lv in range(8) for _ in "ab"),
    "differential, decreasing": "level,g_diff_uS\n" + "".join(f"{lv},{-10 * lv - d}\n" for lv in range(8) for d in (1, 2)),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_calibrate_refuses_a_bad_csv_in_one_line_naming_it(tmp_path, case):
    measured = tmp_path / "measured.csv"
    if BAD_CSVS[case] is not None:
        measured.write_text(BAD_CSVS[case])
    res, out = _calibrate(tmp_path, measured)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --csv {measured}"), res.output
    assert not out.exists()  # nothing written, not even the folder (a refused fit had left it empty)


def test_a_csv_with_both_kinds_of_column_is_refused_saying_so(tmp_path):
    """The message had listed the columns found, 'level', 'conductance_uS', 'g_diff_uS', as if one were missing."""
    measured = _write(tmp_path / "both.csv", BAD_CSVS["both kinds"])
    res, _ = _calibrate(tmp_path, measured)
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert (f"--csv {measured}: has both a 'conductance_uS' column (the selected device's conductance) and a "
            "'g_diff_uS' column (G+ − G−): give one kind of measurement a file") in res.output


def test_the_fit_stays_in_range_and_says_what_the_chain_cannot_reproduce(tmp_path):
    """Measured G+ − G− levels 0–92 µS (σ ≈ 7) had failed with "the fit gives AccessTransistorConfig.vth_v=-7.75 …
    are the conductances in µS?": the unbounded fit walked down a flat valley of its loss (V_th, α and I_knee
    trading against each other) though the chain reproduces them within the transistor's range. Data the
    chain cannot reproduce are refused saying what, with no hint at units."""
    half = 7.23 / 2 ** 0.5  # two rows a level: that pooled σ
    measured = tmp_path / "gdiff.csv"
    measured.write_text("level,g_diff_uS\n" + "".join(f"{lv},{m + d:.4f}\n" for lv, m in enumerate(
        [-0.37, 14.95, 22.48, 42.35, 56.57, 68.14, 82.46, 92.2]) for d in (-half, half)))
    res, out = _calibrate(tmp_path, measured)
    assert res.exit_code == 0, res.output
    fitted = _written_circuit(out / "calibrated.toml").transfer.circuit
    assert -1.0 <= fitted.transistor.vth_v <= 5.0 and 0.5 <= fitted.transistor.alpha <= 2.5
    rows = list(csv.DictReader((out / "calibrated.csv").open()))
    assert max(abs(float(r["fitted_mean_uS"]) - float(r["measured_mean_uS"])) for r in rows) < 5.0  # of a 92 µS span

    res, out = _calibrate(tmp_path, _write(tmp_path / "flat.csv", BAD_CSVS["beyond the chain"]), out="flat")
    assert res.exit_code == 2 and not out.exists()
    assert "cannot reproduce these measurements: in its closest fit level 1 is no higher than level 0" in res.output
    assert "the measured step between them, 0.02 µS (G+ − G−)" in res.output and "µS?" not in res.output


def test_calibrate_warns_of_fitted_settings_no_device_has(tmp_path):
    """Plausible measurements had written g_max_us = 14196.31 µS and i_knee_ua = 17141.89 µA (defaults 206.5,
    113.6) without a word. A steep first step here puts the tail and exponent at the edge of a device's range:
    one warning line names them as paths; the files are written. A chain's own transfers warn of nothing."""
    steep = _write(tmp_path / "steep.csv", _rows(*[(lv, g + d) for lv, g in enumerate([1, 90, 91, 92, 93, 94, 95, 96])
                                                    for d in (-1, 1)]))
    res, out = _calibrate(tmp_path, steep)
    assert res.exit_code == 0 and (out / "calibrated.toml").exists(), res.output
    warned = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and f"--csv {steep}: the fit puts transfer.circuit.transistor.smoothing_v=0.001 V" in warned[0]
    assert "transfer.circuit.transistor.alpha=0.5 (default 0.8662" in warned[0] and "not device data" in warned[0]
    res, _ = _calibrate(tmp_path, _measured_csv(tmp_path / "chain.csv"), out="chain")
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", ["columns", "beyond the chain"])  # refused before the fit; by the fit
def test_a_failed_calibrate_leaves_no_folder_it_created(tmp_path, case):
    measured = tmp_path / "measured.csv"
    measured.write_text(BAD_CSVS[case])
    res, out = _calibrate(tmp_path, measured, out="new/nested/cal")
    assert res.exit_code != 0
    assert len(res.output.strip().splitlines()) == 1 and res.output.startswith(f"error: --csv {measured}"), res.output
    assert not (tmp_path / "new").exists()  # neither --out nor the parents it would have created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["measured.csv"]


@pytest.mark.parametrize("case", ["columns", "beyond the chain"])
def test_a_failed_calibrate_keeps_an_existing_out_folder(tmp_path, case):
    measured = tmp_path / "measured.csv"
    measured.write_text(BAD_CSVS[case])
    out = tmp_path / "cal"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (out, empty):
        res, _ = _calibrate(tmp_path, measured, out=folder.name)
        assert res.exit_code != 0 and res.output.startswith(f"error: --csv {measured}"), res.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert empty.is_dir() and not any(empty.iterdir())


def test_calibrate_failing_while_writing_or_interrupted_leaves_nothing_new(tmp_path, monkeypatch):
    """A write that fails after another succeeded (a full disk) and a Ctrl-C during the fit: the files the
    command wrote and the folder it created go again; a file that was there before stays."""
    import ferristor.cli.device as device
    measured = _measured_csv(tmp_path / "measured.csv")
    real, calls = device._atomic_write, []

    def second_write_fails(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(device, "_atomic_write", second_write_fails)
    res, out = _calibrate(tmp_path, measured)
    assert res.exit_code != 0 and calls[:2] == ["calibrated.toml", "calibrated.png"]
    assert not out.exists()

    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "calibrated.csv").write_text("an earlier file")
    calls.clear()
    res, _ = _calibrate(tmp_path, measured, out="kept")
    assert res.exit_code != 0
    assert [p.name for p in kept.iterdir()] == ["calibrated.csv"]  # the toml written first is gone again
    assert (kept / "calibrated.csv").read_text() == "an earlier file"

    monkeypatch.setattr(device, "_atomic_write", real)
    monkeypatch.setattr(device, "calibrate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    res, out = _calibrate(tmp_path, measured, out="interrupted")
    assert res.exit_code != 0 and not out.exists()


def test_calibrate_refuses_a_binary_file_and_a_folder(tmp_path):
    binary = tmp_path / "measured.csv"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    for given in (binary, tmp_path):
        res, out = _calibrate(tmp_path, given)
        assert res.exit_code == 2 and res.output.count("\n") == 1 and f"--csv {given}" in res.output, res.output
        assert not out.exists()


def test_calibrate_needs_csv_and_out(tmp_path):
    res = CliRunner().invoke(device_group, ["calibrate", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--csv" in res.output
    res = CliRunner().invoke(device_group, ["calibrate", "--csv", str(tmp_path / "m.csv")])
    assert res.exit_code == 2 and "--out" in res.output


def test_calibrated_spec_trains(tmp_path, mnist_data_dir):
    import json

    from ferristor.cli.main import cli
    res, out = _calibrate(tmp_path, _measured_csv(tmp_path / "measured.csv", scale=0.9))
    assert res.exit_code == 0, res.output
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    r = CliRunner().invoke(cli, ["train", "--config", str(out / "calibrated.toml"), "--epochs", "0.002",
                                 "--test-limit", "200", *data, "--out", str(tmp_path / "run"), "--no-progress"])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "run" / "results.json").read_text())["config"]
    written = _written_circuit(out / "calibrated.toml")
    assert got["mode"] == "hm-var" and got["transfer"]["model"] == "circuit"
    assert got["transfer"]["circuit"]["transistor"]["vth_v"] == written.transfer.circuit.transistor.vth_v
    assert got["transfer"]["circuit"]["reference_means_us"] == list(written.transfer.circuit.reference_means_us)


def test_a_spread_below_the_chains_own_is_fitted_to_zero_and_says_so(tmp_path):
    """Devices tighter than the chain's fixed spreads (FeCAP charge, LCS) leave the SET spread at its
    bound of 0: the command warns, naming the settings that would have to shrink."""
    csv_path = tmp_path / "tight.csv"
    means = [1.4, 11.9, 36.5, 58.3, 73.9, 85.5, 95.9, 103.9]
    csv_path.write_text("level,conductance_uS\n" + "".join(f"{lv},{m + d}\n" for lv, m in enumerate(means)
                                                            for d in (-0.5, 0.0, 0.5)))
    res, out = _calibrate(tmp_path, csv_path)
    assert res.exit_code == 0, res.output
    fitted = _written_circuit(out / "calibrated.toml").transfer.circuit.memristor.curve
    assert fitted.sigma_c2c == 0.0 and fitted.sigma_d2d == 0.0
    assert "the SET spread was fitted to 0" in res.output and "fecap.cell.pr_sigma_ln" in res.output


def _level_means(folder):
    rows = list(csv.DictReader((folder / "transfer-levels.csv").open()))
    return {lv: sum(float(r["g_diff_uS"]) for r in rows if int(r["level"]) == lv) / max(
        1, sum(int(r["level"]) == lv for r in rows)) for lv in range(-7, 8)}


def test_the_device_figures_draw_your_chain_from_set_and_config(tmp_path):
    """The figures had drawn the preset alone: a calibrated.toml or a changed chain setting could
    be trained on but not seen. --config takes a spec file's device chain, --set a chain setting;
    a --set outside the chain is refused by name (no figure reads it)."""
    base = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path / "base"), "--samples", "400"])
    assert base.exit_code == 0, base.output
    res, cal = _calibrate(tmp_path, _measured_csv(tmp_path / "m.csv", scale=0.8))
    assert res.exit_code == 0, res.output
    fitted = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path / "fitted"), "--samples", "400",
                                               "--config", str(cal / "calibrated.toml")])
    assert fitted.exit_code == 0, fitted.output
    b, f = _level_means(tmp_path / "base"), _level_means(tmp_path / "fitted")
    assert 0.7 * b[7] < f[7] < 0.9 * b[7]  # the chain fitted to conductances × 0.8
    low = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path / "low"), "--samples", "400",
                                            "--set", "transfer.circuit.memristor.curve.g_max_us=60"])
    assert low.exit_code == 0, low.output
    assert _level_means(tmp_path / "low")[7] < 0.8 * b[7]
    bad = CliRunner().invoke(device_group, ["memristor-levels", "--out", str(tmp_path / "x"), "--set", "rule.k=5"])
    assert bad.exit_code == 2 and "--set rule.k=5: the device figures read the device chain only" in bad.output
    assert not (tmp_path / "x").exists()


def test_a_chain_with_no_distinguishable_levels_warns_as_training_does(tmp_path):
    """transfer-levels drew a threshold above the line's (every level ≈ 0.87 µS) without a word, where train
    warns of the same chain: the figure warns with training's message (one check, chain_problem)."""
    from ferristor.circuit.charge_transfer import ChargeTransferConfig, chain_problem
    args = ["--samples", "50", "--set", "transfer.circuit.transistor.vth_v=3"]
    res = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path / "a"), *args])
    assert res.exit_code == 0 and (tmp_path / "a" / "transfer-levels.png").exists(), res.output
    base = ChargeTransferConfig()
    want = chain_problem(dataclasses.replace(base, transistor=dataclasses.replace(base.transistor, vth_v=3.0)))
    assert f"warning: {want}" in res.output and "do not rise with the level" in want
    res = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(tmp_path / "b"), "--samples", "50",
                                            "--set", "transfer.circuit.memristor.curve.sigma_c2c=0.2"])
    assert res.exit_code == 0 and "warning" not in res.output, res.output


def test_fecap_endurance_draws_your_fatigue_settings(tmp_path):
    """The figure rebuilt its fatigue model from defaults, dropping --set fatigue settings."""
    args = ["fecap-endurance", "--samples", "64"]
    base = CliRunner().invoke(device_group, [*args, "--out", str(tmp_path / "a")])
    mine = CliRunner().invoke(device_group, [*args, "--out", str(tmp_path / "b"),
                                             "--set", "transfer.circuit.fecap.fatigue.n_half_a=1000",
                                             "--set", "transfer.circuit.fecap.fatigue.n_half_b=1000"])
    assert base.exit_code == 0 and mine.exit_code == 0, base.output + mine.output
    assert (tmp_path / "a" / "fecap-endurance.csv").read_bytes() != (tmp_path / "b" / "fecap-endurance.csv").read_bytes()
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"transfer.circuit.line.c_tl_ff" = [300.0, 400.0]\n')
    res = CliRunner().invoke(device_group, ["transfer-line", "--out", str(tmp_path / "c"), "--config", str(grid)])
    assert res.exit_code == 2 and "[grid]/[[points]]" in res.output


def test_calibrate_reads_the_device_figures_own_differential_levels(tmp_path):
    """Fig. 4's levels are G+ − G− (what `device transfer-levels` writes, and what a measured pair gives):
    calibrate fits them as differential statistics, so the round trip chain → Fig. 4 → calibrate gives
    back the chain's differential levels (it had refused the file for want of a conductance_uS column)."""
    from ferristor.circuit.charge_transfer import ChargeTransferConfig, level_statistics
    fig4 = tmp_path / "fig4"
    res = CliRunner().invoke(device_group, ["transfer-levels", "--out", str(fig4), "--samples", "200", "--seed", "1"])
    assert res.exit_code == 0, res.output
    res, out = _calibrate(tmp_path, fig4 / "transfer-levels.csv", samples=1000)
    assert res.exit_code == 0, res.output
    assert "G+ − G−" in res.output and "differential" in (out / "calibrated.toml").read_text()
    fitted = _written_circuit(out / "calibrated.toml").transfer.circuit
    want, _, want_sigma = level_statistics(ChargeTransferConfig(), 20000, seed=5, differential=True)
    got, _, got_sigma = level_statistics(fitted, 20000, seed=5, differential=True)
    assert float((got - want).abs().max()) < 2.0 and abs(got_sigma - want_sigma) < 1.0  # µS, of a 100 µS span
    absolute, _, _ = level_statistics(fitted, 20000, seed=6)  # the weight scale: the fitted chain's own means
    assert fitted.reference_means_us == pytest.approx(absolute.tolist(), abs=0.5)
    rows = list(csv.DictReader((out / "calibrated.csv").open()))
    assert abs(float(rows[0]["measured_mean_uS"])) < 0.5 and float(rows[0]["fitted_mean_uS"]) == 0.0


@pytest.mark.parametrize("scale, column, hint", [
    (1e-6, "conductance_uS", "in siemens? give µS (the values × 1e6"),
    (1e3, "conductance_uS", "in nanosiemens? give µS (the values ÷ 1000"),
    (1e-6, "g_diff_uS", "in siemens? give µS (the values × 1e6")])
def test_calibrate_refuses_conductances_not_in_microsiemens_before_the_fit(tmp_path, monkeypatch, scale, column, hint):
    """Conductances in siemens had run the whole fit (~20 s), then failed on the fitted weight scale
    rounded to 0.0 µS with no word of units; nanosiemens fitted a chain no device has, with a warning."""
    import torch

    def fit(*a, **kw):
        raise AssertionError("the fit ran before the measurements were checked")
    monkeypatch.setattr(torch.optim, "LBFGS", fit)
    measured = tmp_path / "measured.csv"
    measured.write_text(f"level,{column}\n" + "".join(f"{lv},{(m + d) * scale!r}\n" for lv, m in
                                                     enumerate((1.4, 11.9, 36.5, 58.3, 73.9, 85.5, 95.9, 103.9))
                                                     for d in (-3.0 if lv else -0.5, 3.0 if lv else 0.5)))
    res, out = _calibrate(tmp_path, measured)
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert res.output.startswith(f"error: --csv {measured}: the level means of its {column} column (") and hint in res.output
    assert not out.exists()


@pytest.mark.parametrize("command", ["transfer-line", "all"])
def test_a_spec_files_settings_outside_the_chain_are_refused_as_a_set_of_them_is(tmp_path, command):
    """--config with ledger.* or rule.* in its [base] had drawn the figures without them, not a word, where
    the same --set is refused: both are refused now, naming the file and the paths. What device calibrate
    writes beside the chain (mode 'hm-var', transfer.model 'circuit': the file trains this chain) stays."""
    spec = tmp_path / "spec.toml"
    spec.write_text('[base]\nmode = "hm-var"\n"transfer.model" = "circuit"\n"rule.k" = 10\n'
                    '"transfer.circuit.line.c_tl_ff" = 300.0\n[base.ledger]\nfecap_energy_fj = 50.0\n')
    res = CliRunner().invoke(device_group, [command, "--out", str(tmp_path / "a"), "--samples", "50", "--config", str(spec)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert res.output.startswith(f"error: --config {spec}: its [base] sets rule.k = 10, ledger.fecap_energy_fj = 50.0, "
                                 "which the device figures do not read"), res.output
    assert "mode" not in res.output.split("do not read")[0] and not (tmp_path / "a").exists()
    spec.write_text('[base]\nmode = "hm"\n"transfer.circuit.line.c_tl_ff" = 300.0\n')
    res = CliRunner().invoke(device_group, [command, "--out", str(tmp_path / "b"), "--samples", "50", "--config", str(spec)])
    assert res.exit_code == 2 and "its [base] sets mode = 'hm', which the device figures do not read" in res.output
    set_ = CliRunner().invoke(device_group, [command, "--out", str(tmp_path / "c"), "--samples", "50", "--set", "rule.k=10"])
    assert set_.exit_code == 2 and "--set rule.k=10: the device figures read the device chain only" in set_.output
