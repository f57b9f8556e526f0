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
    cfg = to_dict(task_config("ecg", "hm", **over))
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
    assert r.exit_code == 2 and "cannot read results" in r.output


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
