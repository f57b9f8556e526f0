"""``ferristor sweep`` and ``ferristor results`` as a user runs them: a kill -9 of the driver mid-sweep
and the same command again give the store of an uninterrupted sweep; a second driver is refused;
bad input is one line and exit 2."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.sweeps.store import open_store

ARGS = ["sweep", "--grid", "rule.k=10,100,1000", "--set", "mode=hm", "--set", "epochs=0.02", "--set", "eval_every=0.01",
        "--set", "test_limit=300", "--seeds", "0-1", "--no-progress"]


def _cmd(out, data_dir):
    """The driver as a process of its own; it trains in itself (--in-process), so a kill -9 of it is
    a kill mid-trial too (worker processes and Ray workers are killed in tests/sweeps/)."""
    return [sys.executable, "-m", "ferristor.cli.main", *ARGS, "--in-process", "--out", str(out),
            *(["--data-dir", data_dir] if data_dir else [])]


def _rows(folder):
    store = open_store(folder, readonly=True)
    try:
        return sorted((e["trial"], e["seed"], e["step"], e["test_accuracy"], e["final"], e["ledger"]) for e in store.evals())
    finally:
        store.close()


def _done(folder) -> int:
    try:
        store = open_store(folder, readonly=True)
    except Exception:  # noqa: BLE001 — not created yet
        return 0
    try:
        return len(store.trials("done"))
    except Exception:  # noqa: BLE001 — tables not created yet
        return 0
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_of_the_driver_then_the_same_command_gives_the_uninterrupted_store(mnist_data_dir, tmp_path):
    # the uninterrupted reference, the same command run in this process
    ref = CliRunner().invoke(cli, _cmd(tmp_path / "ref", mnist_data_dir)[3:])
    assert ref.exit_code == 0, ref.output
    assert "3/3 trials done, 0 failed" in ref.output
    life = CliRunner().invoke(cli, ["lifetime", str(tmp_path / "ref"), "--rate", "1"])
    labels = [line.split(":")[0].strip() for line in life.output.splitlines()[1:]]
    assert life.exit_code == 0 and labels == ["rule.k=10", "rule.k=100", "rule.k=1000"], life.output  # not ", k=10" again
    out = tmp_path / "s"
    driver = subprocess.Popen(_cmd(out, mnist_data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        lock = out / ".sweep.lock"
        while not (lock.exists() and lock.stat().st_size) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.05)
        # a second driver on the same folder is refused at once, naming the holder
        second = subprocess.run(_cmd(out, mnist_data_dir), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"in use by another process (pid {driver.pid} " in second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        while _done(out) < 1 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    assert 1 <= _done(out) < 3, "kill the driver mid-sweep"
    rerun = subprocess.run(_cmd(out, mnist_data_dir), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "3/3 trials done" in rerun.stdout
    assert _rows(out) == _rows(tmp_path / "ref")


def test_results_table_csv_parquet_and_where(mnist_data_dir, tmp_path):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    r = CliRunner().invoke(cli, [*ARGS[:2], "rule.k=10,100", *ARGS[3:], "--in-process", "--out", str(tmp_path), *data])
    assert r.exit_code == 0, r.output
    table = CliRunner().invoke(cli, ["results", str(tmp_path), "--final"])
    assert table.exit_code == 0 and "rule.k" in table.output and "test_accuracy" in table.output
    assert len(table.output.strip().splitlines()) == 2 + 4  # header, rule, 2 trials × 2 seeds
    csv = CliRunner().invoke(cli, ["results", str(tmp_path), "--format", "csv", "--where", "rule.k=100", "--where", "seed=1"])
    import csv as csv_module
    table_rows = list(csv_module.DictReader(csv.stdout.splitlines()))
    assert {"rule.k", "seed", "epoch", "test_accuracy", "ledger.memristor_ops.mean", "code_version",
            "versions.torch"} <= set(table_rows[0])
    assert len(table_rows) == 2  # two evaluations of one seed of one trial
    assert all(r["rule.k"] == "100" and r["seed"] == "1" for r in table_rows)
    pq = pytest.importorskip("pyarrow.parquet")
    r = CliRunner().invoke(cli, ["results", str(tmp_path), "--format", "parquet", "-o", str(tmp_path / "r.parquet")])
    assert r.exit_code == 0, r.output
    assert pq.read_table(tmp_path / "r.parquet").num_rows == 8
    bad = CliRunner().invoke(cli, ["results", str(tmp_path), "--where", "rule.kk=1"])
    assert bad.exit_code == 2 and "no column 'rule.kk'" in bad.output


def test_a_store_without_its_evals_is_refused_by_results_and_by_the_same_sweep(mnist_data_dir, tmp_path):
    """A finished sweep's store with its evals table dropped: results had said "unexpected
    OperationalError … a bug" (exit 1), and the same sweep command "2/2 trials done, 0 ran now"."""
    import sqlite3
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    args = ["sweep", "--grid", "rule.k=50,100", "--set", "epochs=0.01", "--set", "test_limit=200", "--seeds", "0",
            "--no-progress", "--in-process", "--out", str(tmp_path), *data]
    assert CliRunner().invoke(cli, args).exit_code == 0
    with sqlite3.connect(tmp_path / "sweep.sqlite") as db:
        db.execute("DROP TABLE evals")
    line = f"error: {tmp_path / 'sweep.sqlite'}: not a readable results store (its evals table is missing)"
    for again in (["results", str(tmp_path), "--final"], args):
        r = CliRunner().invoke(cli, again)
        assert r.exit_code == 2, r.output
        assert r.output.strip().splitlines() == [r.output.strip()] and r.output.startswith(line), r.output
    with sqlite3.connect(tmp_path / "sweep.sqlite") as db:  # not made anew, empty, by the rerun
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'evals'").fetchone()[0] == 0


def test_results_json_imported_matches_its_rows(tmp_path, mnist_data_dir):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    r = CliRunner().invoke(cli, ["train", "--mode", "hm", "--epochs", "0.01", "--eval-every", "0.005", "--test-limit", "200",
                                 "--seeds", "0-1", "--out", str(tmp_path / "run"), "--no-progress", *data])
    assert r.exit_code == 0, r.output
    imp = CliRunner().invoke(cli, ["results", str(tmp_path / "sw"), "--import", str(tmp_path / "run"), "--format", "csv"])
    assert imp.exit_code == 0, imp.output
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    store = open_store(tmp_path / "sw", readonly=True)
    evals = store.evals()
    store.close()
    assert [(e["step"], e["seed"], e["test_accuracy"]) for e in evals] == [
        (h["step"], s, a) for h in res["history"] for s, a in zip(res["seeds"], h["test_accuracy"])]
    finals = [e for e in evals if e["final"]]
    assert [json.loads(e["ledger"]) for e in finals] == [rep["network"] for rep in res["ledger"]]
    again = CliRunner().invoke(cli, ["results", str(tmp_path / "sw"), "--import", str(tmp_path / "run"), "--final"])
    assert again.exit_code == 0 and len(again.stdout.strip().splitlines()) == 2 + 2  # imported once


@pytest.mark.parametrize("args, message", [
    (["sweep", "--grid", "rule.kk=1,2"], "error: --grid 'rule.kk=1,2': unknown config path 'rule.kk'"),
    (["sweep", "--grid", "rule.k=1,x"], "error: --grid rule.k='x': k='x' is not allowed"),
    (["sweep", "--set", "epochs=-1"], "error: --set epochs: epochs=-1.0 is not allowed"),
    (["sweep", "nope.toml"], "error: spec file nope.toml: cannot be read"),
    (["sweep", "--ray-address", "127.0.0.1:9", "--set", "epochs=0.001"], "error: --ray-address 127.0.0.1:9: no Ray cluster reachable there"),
    (["sweep", "--workers", "0"], "error: --workers 0: expected an integer ≥ 1"),
    (["sweep", "--threads", "0"], "error: --threads 0 is not allowed: expected a value in [1, "),
    (["sweep", "--grid", "rule.k=1,10", "--grid", "rule.k=5"],
     "error: --grid 'rule.k=5': rule.k was already given by --grid 'rule.k=1,10'; give each config path once"),
    (["sweep", "--in-process", "--ray"], "error: --in-process, --ray and --ray-address: choose one executor"),
    (["results", "/nonexistent/sweep"], "error: /nonexistent/sweep: no results store"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, mnist_data_dir):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir and args[0] == "sweep" else []
    out = ["--out", str(tmp_path / "o")] if args[0] == "sweep" else []
    r = CliRunner().invoke(cli, [*args, *out, *data])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [message + r.output.strip().split(message, 1)[1]] if message in r.output else False, r.output


@pytest.mark.parametrize("command", ["sweep", "train"])
@pytest.mark.parametrize("name, text, message", [
    ("d.toml", '[base]\n"rule.k" = 5\nrule = {k = 7}\n', " [base]: rule.k was already given (as key 'rule.k')"),
    ("d.yaml", "base:\n  rule: {k: 5, k: 7}\n", ": base.rule.k is given twice (line 2)")])
def test_a_spec_file_giving_a_path_twice_is_one_line_and_exit_2(command, name, text, message, tmp_path):
    """sweep F and train --config F had taken k=7, the later of the two, without a word."""
    (tmp_path / name).write_text(text)
    args = ["sweep", str(tmp_path / name)] if command == "sweep" else ["train", "--config", str(tmp_path / name)]
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    line = f"error: spec file {tmp_path / name}{message}"
    assert line in r.output and r.output.strip().splitlines()[-1].startswith(line), r.output
    assert "give each config path once" in r.output and "Traceback" not in r.output


def test_dry_run_lists_trials_with_an_estimate(tmp_path, mnist_data_dir):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=1,10,100", "--set", "mode=hm", "--seeds", "0-9", "--dry-run",
                                 "--workers", "2", "--out", str(tmp_path), *data])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("3 trials in") and len(lines) == 5 and "seeds 0-9" in lines[1] and "rule.k=100" in lines[3]
    assert "new" in lines[1] and lines[-1].startswith("CPU time: ") and "with 2 trials at once" in lines[-1]
    assert not (tmp_path / "sweep.sqlite").exists()  # a dry run writes nothing


def test_dry_run_counts_a_twin_with_other_ledger_costs_as_priced(tmp_path, mnist_data_dir):
    data = ["--data-dir", mnist_data_dir] if mnist_data_dir else []
    r = CliRunner().invoke(cli, ["sweep", "--grid", "rule.k=10,100", "--grid", "ledger.fecap_energy_fj=100,50",
                                 "--set", "mode=hm", "--dry-run", "--out", str(tmp_path), *data])
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.output.splitlines() if line[:4].strip().isdigit()]
    assert [row[2] for row in rows] == ["new", "priced", "new", "priced"]  # points in grid order: k, then the cost
    assert all(row[3] == "0.0s" for row in rows if row[2] == "priced")
