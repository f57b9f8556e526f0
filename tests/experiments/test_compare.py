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
