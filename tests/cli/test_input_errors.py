"""Inputs a review found handled badly: empty or repeated list items, rule settings of the wrong type,
a closed output pipe, output paths that cannot be written, runs two folders down, a diverged loss.
Every refusal is one line naming the option as typed, exit status 2, before any work."""
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.data.registry import Dataset


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(r, *words):
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and "Traceback" not in r.output, r.output
    for w in words:
        assert w in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def no_training(monkeypatch):
    """Every command that would train or read data fails the test: the refusals come first."""
    import ferristor.experiments.compare_rules as C
    import ferristor.experiments.reproduce as rp
    import ferristor.transfer_learning.images as images
    monkeypatch.setattr(C, "train_rule", lambda *a, **k: pytest.fail("a rule trained"))
    monkeypatch.setattr(rp, "_run", lambda *a, **k: pytest.fail("a trial ran"))
    monkeypatch.setattr(images, "from_ferristor", lambda *a, **k: pytest.fail("fig6 read data"))


@pytest.fixture
def tiny(monkeypatch):
    """MNIST-shaped but 60 samples: `train` runs in a fraction of a second."""
    import ferristor.experiments.train as train_module
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 10
    x = (torch.rand(60, 784, generator=g) - 0.5) + y[:, None] / 10
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **kw: Dataset("mnist", x, y, x[:20], y[:20], 10))


def _train(out, *args):
    r = invoke("train", "--out", out, "--epochs", 1, "--test-limit", 10, "--no-progress", *args)
    assert r.exit_code == 0, r.output


# --- 1, 4: comma-separated lists: none empty, no item twice --------------------------------------------

EMPTY = "expected a non-empty comma-separated list"


@pytest.mark.parametrize("args, words", [
    (["compare-rules", "--datasets", "", "--out", "OUT"], ["--datasets ''", EMPTY]),
    (["compare-rules", "--datasets", "mnist,", "--out", "OUT"], ["--datasets mnist,", EMPTY]),
    (["compare-rules", "--rules", "", "--out", "OUT"], ["--rules ''", EMPTY]),
    (["fig6", "--pairs", "", "--out", "OUT"], ["--pairs ''", EMPTY]),
    (["fig6", "--heads", "", "--out", "OUT"], ["--heads ''", EMPTY]),
    (["fig6", "--lsb-grid", "", "--out", "OUT"], ["--lsb-grid ''", EMPTY]),
    (["report", "nowhere", "--k", "", "--out", "OUT"], ["--k", EMPTY]),
    (["lifetime", "nowhere", "--rate", "1", "--k", ""], ["--k", EMPTY]),
    (["reproduce", "fig5c", "--k", "", "--out", "OUT"], ["'--k'", EMPTY]),
    (["reproduce", "fig5f", "--settings", "", "--out", "OUT"], ["'--settings'", EMPTY]),
])
def test_an_empty_list_is_refused_not_read_as_the_defaults(tmp_path, no_training, args, words):
    refused(invoke(*(tmp_path / "o" if a == "OUT" else a for a in args)), *words)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, words", [
    (["reproduce", "fig5c", "--k", "100,100"], ["'--k'", "'100,100'", "100 is given twice"]),
    (["reproduce", "fig5f", "--settings", "mnist-online,mnist-online"], ["'--settings'", "mnist-online is given twice"]),
    (["compare-rules", "--datasets", "mnist,mnist"], ["--datasets mnist,mnist", "mnist is given twice"]),
    (["compare-rules", "--datasets", "mnist", "--rules", "hm,fp,hm"], ["--rules hm,fp,hm", "hm is given twice"]),
    (["fig6", "--pairs", "mnist->fashion-mnist,mnist->fashion-mnist"], ["--pairs", "mnist->fashion-mnist is given twice"]),
    (["fig6", "--heads", "hm,fp-online,hm"], ["--heads hm,fp-online,hm", "hm is given twice"]),
    (["fig6", "--lsb-grid", "2^-8,0.00390625"], ["--lsb-grid", "given twice"]),
    (["report", "nowhere", "--k", "10,1e1"], ["--k", "10 is given twice"]),
])
def test_a_value_given_twice_is_refused(tmp_path, no_training, args, words):
    refused(invoke(*args, "--out", tmp_path / "o"), *words)
    assert not (tmp_path / "o").exists()


def test_lifetime_k_given_twice(tmp_path):
    refused(invoke("lifetime", tmp_path, "--rate", "1", "--k", "5,5"), "--k", "5 is given twice")


# --- 2, 3: a rule's settings -----------------------------------------------------------------------------

@pytest.mark.parametrize("rule, words", [
    ("hm:k=1,k=2", ["--rules hm:k=1,k=2", "the setting k is given twice"]),
    ("tiki-taka:gamma=0.1,k=3,gamma=0.2", ["the setting gamma is given twice"]),
    ("hm:k=1.5", ["--rules hm:k=1.5", "k=1.5: expected an integer ≥ 1"]),
    ("tiki-taka:reset_fast=maybe", ["--rules tiki-taka:reset_fast=maybe", "reset_fast=maybe: expected true or false"]),
    ("tiki-taka:gamma=lots", ["gamma=lots: expected a number"]),
    ("hm:lr=fast", ["lr=fast: expected a number"]),
    ("hm-var:transfer_writes_unchanged=2", ["transfer_writes_unchanged=2: expected true or false"]),
])
def test_a_rule_setting_twice_or_of_the_wrong_type_is_named(tmp_path, no_training, rule, words):
    line = refused(invoke("compare-rules", "--datasets", "mnist", "--rules", f"fp,{rule}", "--out", tmp_path / "o"), *words)
    assert "cannot read" not in line


def test_a_setting_may_recur_in_two_rules(tmp_path):
    r = invoke("compare-rules", "--datasets", "mnist", "--rules", "hm:k=5,hm-var:k=5", "--out", tmp_path, "--table-only")
    # the rules are read (each looked for); with no saved run, nothing to tabulate is exit 2 (as 'compare')
    assert r.exit_code == 2 and "error: nothing to tabulate: no finished run of hm:k=5, hm-var:k=5" in r.stderr, r.output
    assert r.stderr.count("no results yet") == 2


# --- 5: a closed pipe ------------------------------------------------------------------------------------

@pytest.mark.slow  # a fresh interpreter (~4 s); the fast tier's in-process twin is the test below
def test_a_closed_pipe_ends_quietly_with_141():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a byte is written: every write meets EPIPE
    try:
        p = subprocess.run([sys.executable, "-c", "from ferristor.cli.main import main; main()", "params"],
                           stdout=write, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write)
    assert p.returncode == 141, p.stderr
    assert p.stderr.decode().strip() == ""


def test_a_broken_pipe_is_not_reported_as_a_bug(monkeypatch):
    import ferristor.cli.params as params_module

    def gone():
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(params_module, "config_classes", gone)
    r = invoke("params")
    assert r.exit_code == 141 and r.stderr == ""


# --- 6: output paths that cannot be written --------------------------------------------------------------

@pytest.mark.parametrize("option, under, words", [
    ("--out", "afile/x.html", ["--out {p}: cannot be created (a part of the path is a file, not a folder)"]),
    ("--figures", "afile", ["--figures {p}: is a file, not a folder"]),
    ("--figures", "afile/figs", ["--figures {p}: cannot be created"]),
])
def test_report_outputs_that_cannot_be_written_are_named(tmp_path, option, under, words):
    (tmp_path / "afile").write_text("x")
    p = tmp_path / under
    refused(invoke("report", tmp_path, option, p), *(w.format(p=p) for w in words))


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
@pytest.mark.parametrize("option, path", [("--out", "/proc/x.html"), ("--figures", "/proc/x")])
def test_report_outputs_on_a_file_system_that_refuses_them(tmp_path, option, path):
    line = refused(invoke("report", tmp_path, option, path), f"{option} {path}: cannot be")
    assert "unexpected" not in line


def test_results_output_that_cannot_be_written_is_named_before_reading_the_store(tmp_path):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "x.csv"
    line = refused(invoke("results", tmp_path / "no-sweep", "--format", "csv", "-o", path),
                   f"--output {path}: cannot be created (a part of the path is a file, not a folder)")
    assert "unexpected" not in line


# --- 7: runs two levels down (compare-rules' OUT/<dataset>/<rule>) ----------------------------------------

@pytest.fixture
def two_levels(tmp_path, tiny):
    for rule, k in (("hm", 10), ("hm-var", 20)):
        _train(tmp_path / "cr" / "mnist" / rule, "--mode", rule, "--k", k)
    return tmp_path / "cr"


def test_report_lifetime_and_compare_find_runs_two_levels_down(two_levels, tmp_path):
    r = invoke("report", two_levels, "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    r = invoke("lifetime", two_levels, "--rate", "1")
    assert r.exit_code == 0, r.output
    assert "run hm:" in r.output and "run hm-var:" in r.output
    r = invoke("compare", two_levels)
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines() if line.startswith("| hm")]
    assert len(rows) == 2 and "skipped" not in r.output


def test_compare_of_a_folder_of_runs_one_level_down(two_levels):
    r = invoke("compare", two_levels / "mnist")
    assert r.exit_code == 0, r.output
    assert len([line for line in r.output.splitlines() if line.startswith("| hm")]) == 2


def test_compare_names_runs_of_one_folder_name_by_their_paths(two_levels):
    """compare-rules' OUT/mnist/hm and OUT/ecg/hm had both been rows named 'hm'."""
    import shutil
    shutil.copytree(two_levels / "mnist" / "hm", two_levels / "ecg" / "hm")
    r = invoke("compare", two_levels)
    assert r.exit_code == 0, r.output
    names = sorted(line.split("|")[1].strip() for line in r.output.splitlines()
                   if line.startswith("| ") and "/" in line.split("|")[1])
    assert names == ["ecg/hm", "mnist/hm", "mnist/hm-var"], r.output


def test_a_folder_without_runs_says_how_deep_it_was_searched(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    refused(invoke("report", tmp_path), f"PATH '{tmp_path}': holds no results.json", "down to 2 levels")
    refused(invoke("lifetime", tmp_path, "--rate", "1"), f"RUN '{tmp_path}'", "down to 2 levels")


# --- 8: a diverged loss ----------------------------------------------------------------------------------

def test_a_diverged_loss_is_not_blamed_on_an_lr_never_set(tmp_path, tiny):
    # float weights and an lr at float32's edge: the weights overflow (settings beyond the kernels'
    # range, such as --sigma 1e300, are refused before any work now)
    r = invoke("train", "--out", tmp_path / "run", "--epochs", 1, "--k", 20, "--no-progress", "--mode", "fp",
               "--lr", "3e38")
    line = refused(r, "the loss diverged at step", "(lr 3e+38): lower --lr or check --mode fp, --k 20")
    assert "is not allowed" not in line and "--out" not in line  # where it writes cannot make it diverge
    assert "RuntimeWarning" not in r.stderr and ".py:" not in r.stderr


def test_numpy_overflow_warnings_show_as_one_line_once(monkeypatch):
    import numpy as np

    import ferristor.cli.params as params_module

    def overflowing():
        for _ in range(3):
            np.float32(3e38) * np.float32(10)  # numpy: RuntimeWarning "overflow encountered in scalar multiply"
        return []
    monkeypatch.setattr(params_module, "config_classes", overflowing)
    r = invoke("params")
    assert "RuntimeWarning" not in r.stderr and ".py:" not in r.stderr
    assert r.stderr.count("warning: numeric trouble (overflow encountered in scalar multiply)") == 1


def test_compare_rules_names_the_rule_that_diverged(tmp_path, monkeypatch):
    import ferristor.experiments.compare_rules as C
    from ferristor.errors import DivergedError

    def diverge(*a, **k):
        raise DivergedError("lr", 0.1, "step", 600)
    monkeypatch.setattr(C, "train_rule", diverge)
    line = refused(invoke("compare-rules", "--datasets", "mnist", "--rules", "tiki-taka:gamma=10", "--out", tmp_path / "o"),
                   "the loss diverged at step 600 (tiki-taka:gamma=10 on mnist, lr 0.1)", "lower the rule's lr (an lr= setting in --rules)",
                   "or check --rules tiki-taka:gamma=10")
    assert "--lr " not in line  # compare-rules has no --lr option


# --- lifetime's --rate: required, and its help says so ------------------------------------------------------

def test_lifetime_help_marks_rate_required_as_the_command_requires_it(tmp_path):
    # the help had shown --rate as an ordinary option, while lifetime refuses to run without it
    # (report, whose page has a box for it, starts at 1: its help shows that default)
    import re
    text = re.sub(r"\s+", " ", invoke("lifetime", "--help").output)
    rate = text[text.index("--rate"):text.index("--k ")]
    assert "[required]" in rate and "no default" in rate, rate
    r = invoke("lifetime", tmp_path)
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        "error: --rate is missing: give the samples per second the device learns from, e.g. --rate 10"], r.output
    report = re.sub(r"\s+", " ", invoke("report", "--help").output)
    assert "[default: 1]" in report[report.index("--rate"):report.index("--k ")]
