"""Every failure the issue lists is one line naming the option as typed, exit status 2; an
unexpected one is one line and a log file holding the traceback, exit status 1."""
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.data.registry import Dataset


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines, r.output
    assert "Traceback" not in r.output
    return lines[-1]


def refused(r, *words):
    assert r.exit_code == 2, r.output
    line = error_line(r)
    for w in words:
        assert w in line, line
    return line


@pytest.fixture
def tiny(monkeypatch):
    """MNIST-shaped but 60 samples: `train` runs in a fraction of a second; loading it is recorded."""
    import ferristor.experiments.train as train_module
    loads = []
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 10
    x = (torch.rand(60, 784, generator=g) - 0.5) + y[:, None] / 10
    data = Dataset("mnist", x, y, x[:20], y[:20], 10)
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **kw: loads.append(a) or data)
    return loads


def train(tmp_path, *args):
    return invoke("train", "--out", tmp_path / "run", "--epochs", 1, "--no-progress", *args)


# --- options the validators missed --------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--sigma", "-0.5"], ["'--sigma'", "-0.5"]),
    (["--sigma", "nan"], ["'--sigma'", "not a finite number"]),
    (["--k", "0"], ["'--k'", "0"]),
    (["--device", "bogus"], ["--device bogus", "cpu"]),
    (["--seeds", "18446744073709551616"], ["'--seeds'", "9223372036854775807"]),
    (["--seeds", "0-99999999999"], ["'--seeds'", "at most 1,000,000 seeds"]),
    (["--seeds", "a-b"], ["'--seeds'", "'a-b'"]),
    (["--norm", "batch", "--batch", "1"], ["--batch 1 is not allowed with --norm batch", "BatchNorm"]),
    (["--data-dir", ""], ["'--data-dir'", "empty path"]),
    (["--mode", "hm", "--transfer-model", "table"], ["--transfer-model table is not allowed with --mode hm"]),
    (["--eval-every", "1e-9"], ["--eval-every 1e-09", "--epochs 1.0"]),
    (["--epochs", "1e12"], ["'--epochs'"]),
    (["--threads", "100000"], ["'--threads'"]),
])
def test_bad_train_options_are_named_as_typed_before_any_data_is_loaded(tmp_path, tiny, args, words):
    refused(train(tmp_path, *args), *words)
    assert tiny == []  # nothing was loaded
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_cuda_on_a_cpu_only_torch(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    refused(train(tmp_path, "--device", "cuda"), "--device cuda: this torch cannot use CUDA", "devices here: cpu")


def test_too_many_replicas_are_refused_with_the_estimate(tmp_path, tiny, monkeypatch):
    from ferristor.experiments import resources
    monkeypatch.setattr(resources, "available_bytes", lambda device: 16 * 2**30)
    line = refused(train(tmp_path, "--seeds", "0-100000"), "--seeds 0-100000: 100,001 replicas need about",
                   "16.0 GiB is available")
    assert re.search(r"use at most [\d,]+ seeds", line)
    assert not (tmp_path / "run").exists()  # refused before --out was even created


def test_a_batch_larger_than_the_data(tmp_path, tiny):
    refused(train(tmp_path, "--batch", "100000"), "--batch 100000 is not allowed", "at most 60, the training samples")


def test_k_larger_than_the_run_warns_naming_k_and_the_samples(tmp_path, tiny):
    r = train(tmp_path, "--k", "500", "--test-limit", "10")
    assert r.exit_code == 0, r.output
    assert "warning: --k 500: larger than the 60 samples this run trains each replica on: no transfer" in r.stderr


def test_settings_that_do_nothing_are_named_as_typed(tmp_path, tiny):
    # the warning had named config paths (transfer.sigma_levels=0.2) where --sigma 0.2 was typed
    r = train(tmp_path, "--mode", "fp", "--sigma", "0.2", "--level-means", "measured", "--test-limit", "10")
    assert r.exit_code == 0, r.output
    assert ("warning: mode 'fp' has float weights and writes no memristors: --sigma 0.2, --level-means measured "
            "have no effect") in r.stderr


def test_reproduce_options(tmp_path):
    refused(invoke("reproduce", "fig5c", "--k", "a,b", "--out", tmp_path), "'--k'", "'a,b'", "comma-separated integers")
    refused(invoke("reproduce", "fig5c", "--epoch-scale", "-1", "--out", tmp_path), "'--epoch-scale'", "-1")
    refused(invoke("reproduce", "fig5f", "--settings", "mnist-online,cifar", "--out", tmp_path), "'--settings'", "'cifar'")
    refused(invoke("reproduce", "fig5c", "--workers", "0", "--out", tmp_path), "'--workers'")
    from ferristor.cli.common import cpu_count
    # more trials than cores: only where they share a GPU (threads on streams)
    refused(invoke("reproduce", "fig5c", "--workers", cpu_count() + 1, "--out", tmp_path), "'--workers'",
            f"at most {cpu_count()}", "--device cuda")


def test_reproduce_checks_the_data_before_starting_any_trial(tmp_path):
    r = invoke("reproduce", "fig5f", "--settings", "ecg-online", "--data-dir", tmp_path / "empty", "--out", tmp_path / "out",
               "--epoch-scale", "0.01", "--no-progress")
    refused(r, "mitdb", "not found in", "--data-dir")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lock"]  # no trial started


def test_reproduce_fresh_discards_the_saved_points(tmp_path, monkeypatch):
    from ferristor.data import registry
    from ferristor.experiments import reproduce as rp
    monkeypatch.setattr(registry, "locate_dataset", lambda *a: None)
    seen = []
    monkeypatch.setattr(rp, "_run", lambda trials, out, *a: seen.append(sorted(p.name for p in (out / "trials").glob("*")))
                        or [{"accuracy": [90.0], "k": t["k"]} for t in trials])
    monkeypatch.setattr("ferristor.experiments.plots.plot_accuracy_vs_k", lambda *a: None)
    monkeypatch.setattr("ferristor.experiments.plots.plot_ops_vs_k", lambda *a: None)
    monkeypatch.setattr("ferristor.experiments.plots.plot_energy_vs_k", lambda *a: None)
    trials = tmp_path / "fig5cde" / "trials"
    trials.mkdir(parents=True)
    (trials / "0123456789abcdef.json").write_text("{}")
    (trials / ".0123456789abcdef.json.abcd1234.part").write_text("half")  # a killed write
    args = ["reproduce", "fig5c", "--k", "5", "--seeds", "0", "--out", tmp_path, "--no-progress"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args, "--fresh").exit_code == 0
    assert seen == [["0123456789abcdef.json"], []]  # the orphan was cleaned at once, the point by --fresh


# --- the output folder ---------------------------------------------------------------------------------

def test_out_is_checked_before_loading_data(tmp_path, tiny):
    (tmp_path / "file").write_text("x")
    refused(invoke("train", "--out", tmp_path / "file" / "run"), f"--out {tmp_path / 'file' / 'run'}: cannot be created",
            "a part of the path is a file")
    refused(invoke("train", "--out", tmp_path / "file"), "'--out'", "is a file")
    assert tiny == []


def test_a_second_run_on_one_out_is_refused_naming_the_holder(tmp_path, tiny):
    from ferristor.experiments.run_folder import claim
    with claim(tmp_path / "run", command="ferristor train --k 7"):
        refused(train(tmp_path), "is in use by another ferristor run", "ferristor train --k 7")
    assert tiny == []
    assert train(tmp_path).exit_code == 0


def test_another_configuration_is_refused_and_fresh_starts_over(tmp_path, tiny):
    assert train(tmp_path, "--k", "10").exit_code == 0
    refused(train(tmp_path, "--k", "20", "--sigma", "0.3"), "holds a checkpoint of another configuration",
            "--k (10 there, 20 now)", "--sigma (0.594 there, 0.3 now)", "rerun with --fresh", "another --out")
    r = train(tmp_path, "--k", "20", "--fresh")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["rule"]["k"] == 20


def test_a_corrupt_checkpoint_names_the_file_and_the_flag(tmp_path, tiny):
    assert train(tmp_path).exit_code == 0
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    refused(train(tmp_path), f"{ckpt} is not a usable checkpoint", "not a torch checkpoint (empty or not a zip file",
            "--fresh")
    assert train(tmp_path, "--fresh").exit_code == 0


# --- device, params, compare ----------------------------------------------------------------------------

def test_device_samples_must_be_positive_and_nothing_is_written(tmp_path):
    for n in ("-5", "0", "1"):  # 1: a spread of one sample is NaN
        refused(invoke("device", "fecap-read", "--out", tmp_path / "d", "--samples", n), "'--samples'", n)
    refused(invoke("device", "all", "--out", tmp_path / "d", "--samples", "0"), "'--samples'")
    assert not (tmp_path / "d").exists()


def test_device_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    refused(invoke("device", "fecap-energy", "--out", tmp_path / "d"), "pip install 'ferristor[plot]'")
    refused(invoke("reproduce", "fig5c", "--out", tmp_path / "r"), "pip install 'ferristor[plot]'")
    assert not (tmp_path / "d").exists() and not (tmp_path / "r").exists()


def test_device_help_describes_every_command():
    r = invoke("device", "--help")
    assert r.exit_code == 0
    rows = r.output.split("Commands:")[1].strip().splitlines()
    assert len(rows) == 10 and not any(row.split()[-1] == "Fig." for row in rows)
    assert "FeCAP switching energy vs pulse width (Fig. 2c)" in r.output


def test_device_out_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    refused(invoke("device", "fecap-energy", "--out", tmp_path / "file" / "d"), "--out", "cannot be created")


def test_params_with_an_unknown_name_is_an_error():
    refused(invoke("params", "bogus"), "'bogus' matches no config class", "RuleConfig")
    assert invoke("params", "rule").exit_code == 0


@pytest.mark.parametrize("content, words", [("garbage", "cannot read it as JSON"),
                                            ("[]", "not a ferristor results file: it holds []"),
                                            ('{"config": {}}', "'final_test_accuracy' is missing, expected a non-empty list"),
                                            ('{"config": {}, "final_test_accuracy": [91.2, 90.1]}',  # compare had printed 9065 %
                                             "'final_test_accuracy[0]' is 91.2, expected an accuracy from 0 to 1")])
def test_compare_names_a_bad_results_file(tmp_path, content, words):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(content)
    refused(invoke("compare", tmp_path / "run"), words, str(tmp_path / "run" / "results.json"))


def test_compare_rules_names_a_bad_rule_setting_before_training_any_rule(tmp_path, monkeypatch):
    import ferristor.experiments.compare_rules as C
    monkeypatch.setattr(C, "train_rule", lambda *a, **k: pytest.fail("a rule trained before the settings were checked"))
    refused(invoke("compare-rules", "--datasets", "mnist", "--rules", "fp,memristor-sgd:write=every-update",
                   "--out", tmp_path / "o"),
            "--rules memristor-sgd:write=every-update: write='every-update' is not allowed", "'every_update'")


@pytest.mark.parametrize("args, words", [
    (["--pairs", "fashion-mnist->mnst"], ["--pairs fashion-mnist->mnst: 'mnst' is not allowed", "'mnist'"]),
    (["--pairs", "mnist->fashion-mnist[0-12]"], ["--pairs mnist->fashion-mnist[0-12]", "classes of fashion-mnist (0…9)"]),
    (["--per-class", "15"], ["--per-class 15 is not allowed with --folds 10", "a multiple of the folds", "10 or 20"]),
    (["--per-class", "21", "--folds", "4"], ["--per-class 21 is not allowed with --folds 4", "20 or 24"]),
])
def test_fig6_names_bad_pairs_and_per_class_before_reading_any_data(tmp_path, monkeypatch, args, words):
    import ferristor.transfer_learning.images as images
    monkeypatch.setattr(images, "from_ferristor", lambda *a, **k: pytest.fail("data read before the options were checked"))
    refused(invoke("fig6", *args, "--out", tmp_path / "o"), *words)
    assert not (tmp_path / "o").exists()


# --- unexpected errors ------------------------------------------------------------------------------------

def test_an_unexpected_error_is_one_line_and_a_log_file(tmp_path, monkeypatch):
    import ferristor.experiments.train as train_module

    def broken(*a, **k):
        return 1 / 0
    monkeypatch.setattr(train_module, "load_dataset", broken)
    r = train(tmp_path)
    assert r.exit_code == 1 and "Traceback" not in r.output
    (line,) = [line for line in r.stderr.splitlines() if line.strip()]
    assert line.startswith("error: unexpected ZeroDivisionError: division by zero")
    log = re.search(r"the traceback is in (\S+\.log)\)", line).group(1)
    text = open(log).read()
    assert "Traceback" in text and "1 / 0" in text and "command:" in text


def test_the_crash_log_does_not_fail_on_a_refused_cache_setting(monkeypatch):
    from ferristor.cli.common import log_folder
    monkeypatch.setenv("FERRISTOR_CACHE", "   ")  # refused by the data's lookup; the log goes to the default
    assert log_folder() == Path.home() / ".cache" / "ferristor" / "logs"
    monkeypatch.setenv("FERRISTOR_CACHE", "/tmp/elsewhere")
    assert log_folder() == Path("/tmp/elsewhere/logs")


def test_a_full_disk_mid_run_says_so(tmp_path, tiny, monkeypatch):
    import errno

    import ferristor.experiments.fit as fit_module

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fit_module, "atomic_write", full)
    r = train(tmp_path)
    assert r.exit_code == 1
    assert "is the file system full or read-only?" in error_line(r) and "the traceback is in" in error_line(r)


# --- sweeps: the store's disk trouble, an unwritable --out, a folder a train writes ------------------

@pytest.fixture
def sweep_data(mnist, monkeypatch):
    """``sweep`` trains on a slice of MNIST (loaded once per session): its trials take a second."""
    import ferristor.sweeps.run as run_module
    tiny = Dataset("mnist", mnist.x_train[:600], mnist.y_train[:600], mnist.x_test[:100], mnist.y_test[:100], 10)
    real = run_module.load_datasets
    loads = []
    monkeypatch.setattr(run_module, "load_datasets", lambda names, data_dir=None, given=None:
                        loads.append(names) or real(names, data_dir, {"mnist": tiny}))
    return loads


def sweep(out, *args):
    return invoke("sweep", "--grid", "rule.k=10", "--set", "mode=hm", "--set", "epochs=0.5", "--set", "eval_every=0.25",
                  "--set", "checkpoint_every=0.1", "--seeds", "0-1", "--in-process", "--no-progress", "--out", out, *args)


@pytest.mark.parametrize("trouble", ["database or disk is full", "attempt to write a readonly database",
                                     "disk I/O error"])
def test_a_store_the_disk_refuses_says_so_not_a_bug(tmp_path, sweep_data, monkeypatch, trouble):
    import sqlite3

    import ferristor.sweeps.driver as driver
    real = driver.open_store

    def failing(folder, readonly=False):
        store = real(folder, readonly)
        if trouble == "database or disk is full":  # a real SQLITE_FULL: the file may not grow any more
            n = store.db.execute("PRAGMA page_count").fetchone()[0]
            store.db.execute(f"PRAGMA max_page_count = {n + 2}")
        else:  # SQLite's words for the others, from the first checkpoint written
            def refuse(*a):
                raise sqlite3.OperationalError(trouble)
            store.save_checkpoint = refuse
        return store
    monkeypatch.setattr(driver, "open_store", failing)
    r = sweep(tmp_path / "s")
    assert r.exit_code == 1, r.output
    line = error_line(r)
    assert line.startswith(f"error: a write failed (OperationalError: {trouble}); is the file system full or "
                           "read-only? (the traceback is in "), line
    assert "cannot rollback" not in r.output and "a bug" not in line


@pytest.mark.parametrize("how", ["read-only", "under a file"])
def test_sweep_refuses_an_out_it_cannot_write_naming_out_before_loading_data(tmp_path, sweep_data, monkeypatch, how):
    import errno

    import ferristor.experiments.run_folder as run_folder
    if how == "read-only":  # (a chmod would not stop root)
        out = tmp_path / "ro"

        def read_only(path, *a, **k):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        monkeypatch.setattr(run_folder, "open", read_only, raising=False)
        reason = "cannot be written (the file system is read-only)"
    else:
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "s"
        reason = "cannot be created (a part of the path is a file, not a folder)"
    line = refused(sweep(out), f"--out {out}: {reason}")
    assert ".sweep.lock" not in line and sweep_data == []  # nothing loaded


def test_sweep_is_refused_on_a_folder_a_train_writes(tmp_path, sweep_data):
    import os

    from ferristor.experiments.run_folder import FolderLock, prepare
    out = tmp_path / "run"
    lock = FolderLock(prepare(out)).acquire(command="ferristor train --out run")
    try:
        refused(sweep(out), f"sweep folder {out} is in use by another process (pid {os.getpid()} ",
                ": ferristor train --out run)")
    finally:
        lock.release()
    assert sweep_data == [] and not (out / "sweep.sqlite").exists()
    r = sweep(out)
    assert r.exit_code == 0, r.output
