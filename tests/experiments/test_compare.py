"""`compare` lists finished runs with exactly the settings that differ, and skips unfinished ones."""
import json

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.config_base import to_dict
from ferristor.errors import DataError
from ferristor.experiments.compare import compare_table, load_runs
from ferristor.experiments.config import task_config


def _write(folder, acc, **over):
    folder.mkdir()
    cfg = to_dict(task_config("ecg", "hm", **{"seeds": list(range(len(acc))), **over}))  # one seed per accuracy
    (folder / "results.json").write_text(json.dumps({"config": cfg, "final_test_accuracy": acc}))


def test_table_shows_differing_fields_and_statistics(tmp_path):
    _write(tmp_path / "a", [0.90, 0.94], threads=2, lr=0.03)
    _write(tmp_path / "b", [0.80, 0.90, 1.00], rounding="nearest", lr=0.01)
    (tmp_path / "running").mkdir()
    runs, unfinished = load_runs([tmp_path / "a", tmp_path / "b", tmp_path / "running"])
    assert unfinished == [tmp_path / "running"]
    table = compare_table(runs).splitlines()
    assert table[0] == "| run | rule.lr | rule.rounding | seeds | mean ± std % | s.e.m. | median | min | max |"
    assert table[2] == "| a | 0.03 | stochastic | 2 | 92.00 ± 2.83 | 2.00 | 92.00 | 90.00 | 94.00 |"  # threads: not a difference
    assert table[3] == "| b | 0.01 | nearest | 3 | 90.00 ± 10.00 | 5.77 | 90.00 | 80.00 | 100.00 |"


def test_corrupt_results_is_a_clear_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    with pytest.raises(DataError, match="bad/results.json"):
        load_runs([tmp_path / "bad"])
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "bad/results.json: cannot read it as JSON (" in r.output


def test_one_seed_has_no_spread_to_show(tmp_path):
    # was "93.00 ± 0.00 | 0.00": a spread of zero, measured, where one seed measures none
    _write(tmp_path / "one", [0.93])
    _write(tmp_path / "two", [0.93, 0.93])
    table = compare_table(load_runs([tmp_path / "one", tmp_path / "two"])[0]).splitlines()
    assert table[2] == "| one | 1 | 93.00 ± n/a | n/a | 93.00 | 93.00 | 93.00 |"
    assert table[3] == "| two | 2 | 93.00 ± 0.00 | 0.00 | 93.00 | 93.00 | 93.00 |"  # two equal seeds: a real 0


def test_runs_with_a_ledger_show_energy_operations_and_margins(tmp_path):
    """Two runs that differ only in energy per operation had shown identical rows: compare showed
    accuracy alone. With ledgers, the device figures stand beside it (the mean over replicas of the
    network's energy and memristor operations per device, the worst replica's margins)."""
    def ledger(energy, margin):
        return {"network": {"energy_nJ": {"per_device": energy}, "memristor_ops": {"mean": 12000.0},
                            "endurance": {"fecap_margin": 75.2, "memristor_margin": margin}}}
    for name, pj, reps in (("one", 1.0, [ledger(38.4, 17.0), ledger(38.4, 16.5)]), ("half", 0.5, [ledger(32.4, 17.0)])):
        _write(tmp_path / name, [0.9] * len(reps), **{})
        data = json.loads((tmp_path / name / "results.json").read_text())
        data["config"]["ledger"]["memristor_energy_pj"] = pj
        data["ledger"] = reps
        (tmp_path / name / "results.json").write_text(json.dumps(data))
    _write(tmp_path / "old", [0.9])  # saved without a ledger
    runs, _ = load_runs([tmp_path / "one", tmp_path / "half", tmp_path / "old"])
    table = compare_table(runs).splitlines()
    assert table[0].endswith("| energy / device | memristor ops / device | endurance margin FeCAP · memristor |")
    assert table[2].endswith("| 38.4 nJ | 12,000 | 75.2× · 16.5× |")
    assert table[3].endswith("| 32.4 nJ | 12,000 | 75.2× · 17× |")
    assert table[4].endswith("| – | – | – |")


def test_an_fp_runs_empty_ledger_has_no_device_cells():
    import warnings

    from ferristor.experiments.compare import device_cells
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # np.mean of nothing had warned of numeric trouble
        assert device_cells({"ledger": []}) is None and device_cells({}) is None


def _with(folder, acc, ledger=None, text=None):
    _write(folder, acc)
    data = json.loads((folder / "results.json").read_text())
    if ledger is not None:
        data["ledger"] = ledger
    (folder / "results.json").write_text(text(json.dumps(data)) if text else json.dumps(data))


def _net(energy, ops, fecap_margin, memristor_margin):
    return {"network": {"energy_nJ": {"per_device": energy}, "memristor_ops": {"mean": ops},
                        "endurance": {"fecap_margin": fecap_margin, "memristor_margin": memristor_margin}}}


def test_null_values_are_shown_as_not_recorded(tmp_path):
    """null, which report's FIELDS allow (a strict writer's nan), is n/a in the table, never a crash or 'nan'.
    A null margin is read back as infinite (results.read_json: a device never written), as report shows it;
    a NaN one (an older writer's literal) is not recorded: n/a, as report's worst margin is."""
    _with(tmp_path / "some", [0.9, None, 0.8], [_net(30.0, None, None, 75.2), _net(None, None, 40.0, 16.5),
                                                 _net(36.0, None, 50.0, 17.0)])
    _with(tmp_path / "none", [None], [_net(None, 12000.0, 75.2, 1.0)], text=lambda t: t.replace("1.0}", "NaN}"))
    table = compare_table(load_runs([tmp_path / "some", tmp_path / "none"])[0]).splitlines()
    # statistics over the seeds that record one; device means over the replicas that record one
    assert table[2].endswith("| 2 of 3 | 85.00 ± 7.07 | 5.00 | 85.00 | 80.00 | 90.00 | 33 nJ | n/a | 40× · 16.5× |")
    assert table[3].endswith("| 0 of 1 | n/a | n/a | n/a | n/a | n/a | n/a | 12,000 | 75.2× · n/a |")
    _with(tmp_path / "never", [0.9], [_net(30.0, 0.0, None, None)])
    assert compare_table(load_runs([tmp_path / "never"])[0]).splitlines()[2].endswith("| ∞× (no writes) · ∞× (no writes) |")


def test_compare_checks_only_the_fields_it_reads(tmp_path):
    """A field the table never reads (timing) does not stop compare; report, which shows it, refuses it."""
    from ferristor.experiments.compare import COMPARED
    from ferristor.report.runs import fields_of
    _write(tmp_path / "a", [0.9])
    data = json.loads((tmp_path / "a" / "results.json").read_text())
    data["timing"] = "lost"
    (tmp_path / "a" / "results.json").write_text(json.dumps(data))
    assert load_runs([tmp_path / "a"])[0][0][1]["timing"] == "lost"
    checked = [path for path, _ in fields_of(*COMPARED)]
    assert {"config", "config.rule", "final_test_accuracy.*", "ledger", "ledger.*", "ledger.*.network",
            "ledger.*.network.endurance"} <= set(checked) and "timing" not in checked
    with pytest.raises(KeyError, match="ledger.network"):
        fields_of("ledger.network")  # a path FIELDS lacks would check nothing: refused


def test_a_missing_results_file_is_no_unfinished_run(tmp_path):
    """From Python, a results file named that is not there had been counted as an unfinished run."""
    from ferristor.errors import DataError
    from ferristor.experiments.compare import load_runs
    with pytest.raises(DataError, match="results.json: no such results file"):
        load_runs([tmp_path / "gone" / "results.json"])
    (tmp_path / "running").mkdir()  # a run folder without results yet: unfinished, as before
    assert load_runs([tmp_path / "running"]) == ([], [tmp_path / "running"])


# --- validation accuracy (runs trained with --validation f) ----------------------------------------------

def _with_validation(folder, test, val):
    _write(folder, test, validation=0.1)
    data = json.loads((folder / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**data, "final_val_accuracy": val}))


def test_a_validation_column_where_any_run_recorded_one(tmp_path):
    # compare had shown only the test accuracy of runs trained with --validation 0.1
    _with_validation(tmp_path / "val", [0.90, 0.94], [0.80, 0.84])
    _write(tmp_path / "plain", [0.93])
    _with_validation(tmp_path / "part", [0.90, 0.92], [0.70, None])  # a seed that recorded none
    table = compare_table(load_runs([tmp_path / "val", tmp_path / "plain", tmp_path / "part"])[0]).splitlines()
    assert table[0].endswith("| max | validation accuracy mean ± std % |"), table[0]
    assert table[2].startswith("| val | 0.1 | 2 | 92.00 ± 2.83 |") and table[2].endswith("| 82.00 ± 2.83 |")
    assert table[3].endswith("| n/a |")  # trained without a validation split
    assert table[4].endswith("| 70.00 ± n/a (1 of 2 seeds) |")


def test_no_validation_column_where_no_run_has_one(tmp_path):
    _write(tmp_path / "a", [0.9])
    assert "validation" not in compare_table(load_runs([tmp_path / "a"])[0])


@pytest.mark.parametrize("val, said", [([91.0, 92.0], "'final_val_accuracy[0]' is 91.0, expected an accuracy from 0 to 1"),
                                       ([0.9], "'final_val_accuracy' has 1 entries, 'final_test_accuracy' 2"),
                                       ("0.9", "'final_val_accuracy' is \"0.9\", expected a list")])
def test_a_validation_accuracy_that_is_not_one_per_seed_is_refused(tmp_path, val, said):
    _with_validation(tmp_path / "v", [0.9, 0.8], val)
    with pytest.raises(DataError, match="v/results.json: ") as e:
        load_runs([tmp_path / "v"])
    assert said in str(e.value)


def test_compare_shows_the_validation_of_a_real_run(tmp_path, monkeypatch):
    """What ``train --validation`` writes is what compare reads (final_val_accuracy, one per seed)."""
    import torch

    import ferristor.experiments.train as train_module
    from ferristor.data.registry import Dataset
    g = torch.Generator().manual_seed(0)
    y = torch.arange(80) % 10
    x = (torch.rand(80, 784, generator=g) - 0.5) + y[:, None] / 10
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **kw: Dataset("mnist", x, y, x[:20], y[:20], 10))
    for name, extra in (("v", ["--validation", "0.25"]), ("t", [])):
        r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / name), "--epochs", "1", "--seeds", "0-1",
                                     "--no-progress", *extra])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "v"), str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    head, _, *rows = [[c.strip() for c in line.split("|")[1:-1]] for line in r.stdout.splitlines()]
    column = head.index("validation accuracy mean ± std %")
    saved = json.loads((tmp_path / "v" / "results.json").read_text())["final_val_accuracy"]
    import numpy as np
    a = 100 * np.asarray(saved)
    assert rows[0][column] == f"{a.mean():.2f} ± {a.std(ddof=1):.2f}" and rows[1][column] == "n/a"
