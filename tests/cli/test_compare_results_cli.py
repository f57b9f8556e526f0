"""`ferristor compare` on a sweep folder, and `ferristor results --where` with an accuracy in percent."""
import json

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.config_base import to_dict
from ferristor.experiments.config import task_config
from ferristor.sweeps.store import open_store


def _sweep(folder):
    folder.mkdir()
    open_store(folder).close()  # an (empty) results store: what `ferristor sweep` leaves, no results.json
    return folder


def _run(folder, acc):
    folder.mkdir()
    cfg = to_dict(task_config("ecg", "hm"))
    (folder / "results.json").write_text(json.dumps({"config": cfg, "final_test_accuracy": acc}))
    return folder


def test_compare_of_a_sweep_folder_says_where_its_trials_are_and_fails(tmp_path):
    # was "skipped, no results.json yet" and exit 0
    sweep = _sweep(tmp_path / "sw")
    r = CliRunner().invoke(cli, ["compare", str(sweep)])
    assert r.exit_code == 2
    assert f"a sweep folder, not a run: {sweep}" in r.stderr and f"ferristor results {sweep}" in r.stderr
    assert "no results.json yet" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith("error: nothing to compare") and str(sweep) in r.stderr.splitlines()[-1]


def test_compare_of_a_sweep_beside_a_run_compares_the_run(tmp_path):
    sweep, run = _sweep(tmp_path / "sw"), _run(tmp_path / "run", [0.9, 0.8])
    r = CliRunner().invoke(cli, ["compare", str(sweep), str(run)])
    assert r.exit_code == 0 and "| run | 2 | 85.00 ± 7.07 |" in r.stdout and "a sweep folder" in r.stderr


def test_compare_of_runs_still_going_only_fails(tmp_path):
    (tmp_path / "going").mkdir()
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "going")])
    assert r.exit_code == 2 and "skipped, no results.json yet" in r.stderr and "nothing to compare" in r.stderr


@pytest.mark.parametrize("condition, fraction", [("test_accuracy>40", "test_accuracy>0.4"),
                                                 ("val_accuracy <= 95.5", "val_accuracy<=0.955"),
                                                 ("test_accuracy>=90%", "test_accuracy>=0.9")])
def test_results_refuses_an_accuracy_in_percent(tmp_path, condition, fraction):
    # was "(no rows: no finished trial matches)", exit 0: the store holds fractions 0-1
    sweep = _sweep(tmp_path / "sw")
    r = CliRunner().invoke(cli, ["results", str(sweep), "--where", condition])
    assert r.exit_code == 2
    assert "accuracies are stored as fractions 0–1" in r.stderr and f"write {fraction}" in r.stderr


@pytest.mark.parametrize("condition", ["test_accuracy>0.4", "test_accuracy<=1", "rule.k>40", "seed>=0"])
def test_results_accepts_a_fraction_and_other_columns(tmp_path, condition):
    r = CliRunner().invoke(cli, ["results", str(_sweep(tmp_path / "sw")), "--where", condition])
    assert r.exit_code == 0, r.output
