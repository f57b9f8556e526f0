"""Property: whatever is typed, ferristor answers with a result (exit 0) or one line naming what was
typed wrong (exit 2) — never a traceback, never exit 1 (an internal error).

Hypothesis drives every command and option in-process through click's test runner with random
and hostile values: numbers out of range, of the wrong type, huge, negative, non-finite, odd
strings and odd paths. Runs that pass validation meet an empty --data-dir, so they fail fast with a
clean DataError; options are validated before data are loaded, so every option is exercised.
"""
from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferristor.cli.main import cli

HOSTILE = ["-1", "0", "1", "2", "-0.5", "0.5", "1.5", "nan", "-nan", "inf", "-inf", "1e308", "-1e308", "1e-400",
           "1e400", "1e-9", str(2**63), str(2**64), str(-(2**64)), "9" * 40, "abc", "", " ", "0x10", "1_000", "٣",
           "1,2", "--k", "-", "None", "true", "\t", "1e", ".", "0-5", "5-0", "0-100000", "0-99999999999"]
NUMBER = st.one_of(st.sampled_from(HOSTILE), st.integers(-(2**70), 2**70).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=6))
SEEDS = st.one_of(st.sampled_from(["0", "0-4", "0,3,7", "0-1000", "0-100000", str(2**64 - 1), str(2**64),
                                   "0-99999999999", "1-0", "0,0", ",", "a-b", "0-4,", "٣", "-1", "1" * 30, ""]),
                  st.text(alphabet="0123456789-, ", max_size=8))
WORDS = st.one_of(st.sampled_from(["mnist", "ecg", "fashion-mnist", "fp", "hm", "hm-var", "cifar", "", "layer",
                                   "batch", "none", "nearest", "auto", "numba", "torch", "cpu", "cuda", "cuda:0",
                                   "cuda:99", "mps", "meta", "bogus", "cpu:0", " cpu", "CPU", "xpu"]),
                  st.text(max_size=8))

SETS = st.one_of(st.builds("{}={}".format, st.sampled_from(["rule.k", "epochs", "seeds", "data_dir", "bogus", "", "rule",
                                                             "transfer.circuit.line.c_tl_ff", "network.sizes",
                                                             "transfer.circuit.reference_means_us", "mode"]),
                            st.one_of(NUMBER, WORDS, st.sampled_from(["[1, 2]", "[]", "[784, 10]", "{}", "null"]))),
                 st.text(max_size=10))
TRAIN = {
    "--dataset": WORDS, "--mode": WORDS, "--k": NUMBER, "--p": NUMBER, "--lr": NUMBER, "--epochs": NUMBER,
    "--batch": NUMBER, "--norm": WORDS, "--seeds": SEEDS, "--rounding": WORDS, "--init-scale": NUMBER,
    "--hidden-lsb": NUMBER, "--sigma": NUMBER, "--level-means": WORDS, "--transfer-model": WORDS,
    "--eval-every": NUMBER, "--test-limit": NUMBER, "--threads": NUMBER, "--backend": WORDS, "--device": WORDS,
    "--set": SETS,
}
TRAIN_FLAGS = ["--skip-zero-updates", "--skip-unchanged-transfers", "--fresh", "--progress"]
REPRODUCE = {
    "--seeds": SEEDS, "--epoch-scale": NUMBER, "--k": st.one_of(NUMBER, st.sampled_from(["1,2", "a,b", "1,,2", "5,0"])),
    "--settings": st.one_of(WORDS, st.sampled_from(["mnist-online", "ecg-online,mnist-minibatch", "mnist-online,x"])),
    "--rounding": WORDS, "--level-means": WORDS, "--threads": NUMBER, "--workers": NUMBER,
}
FIGURES = ["fig5c", "fig5d", "fig5e", "fig5f", "all", "fig5", "", "FIG5C"]
DEVICE = ["fecap-read", "fecap-energy", "fecap-endurance", "memristor-icc", "memristor-levels",
          "memristor-endurance", "transfer-line", "transfer-levels", "all", "calibrate"]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """An empty data root, a file, and odd --out paths under one folder."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "empty-data").mkdir()
    (root / "a-file").write_text("not a folder")
    return root


def paths(root) -> st.SearchStrategy[str]:
    return st.sampled_from([
        str(root / "out"), str(root / "out" / "deep" / "er"), str(root / "a-file"), str(root / "a-file" / "x"),
        "", " ", "-", ".", "sub/..", "~", "x" * 300, str(root / ("y" * 300) / "z"), "/dev/null", "/dev/null/x",
        "/proc/no-such/x", "rés ül\ttats", "a\nb", "runs/../runs/x", str(root / "empty-data"),
    ])


@pytest.fixture(autouse=True)
def _restore_threads():
    """A valid --threads sets torch's thread count for the process: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def check(args: list[str]) -> None:
    r = CliRunner().invoke(cli, args)
    shown = f"ferristor {' '.join(args)!r}\n--- exit {r.exit_code}\n{r.output}"
    assert r.exception is None or isinstance(r.exception, SystemExit), shown + f"\n{r.exception!r}"
    assert r.exit_code in (0, 2), shown
    assert "Traceback" not in r.output, shown
    if r.exit_code == 2:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines, shown
        last = lines[-1]
        assert last.startswith("error: "), shown  # Click's usage errors too (FerristorGroup.main)
        options = [a for a in args if a.startswith("--")]
        # a single dash is a run of short options to click ('-00' is '-0' twice): it names the first
        options += [a[:2] for a in args if a.startswith("-") and not a.startswith("--") and len(a) > 1]
        values = [a for a in args[1:] if not a.startswith("--")]  # arguments (a figure, a path), by value
        named = [repr(v) for v in values] + [v for v in values if len(v.strip()) >= 2]
        # as typed, or as click shows a control character: escaped
        escaped = [o.encode("unicode_escape").decode() for o in options]
        assert any(o in last for o in options + escaped) or any(v in last for v in named), shown


def _options(table, draw, max_size=4):
    chosen = draw(st.lists(st.sampled_from(sorted(table)), unique=True, max_size=max_size))
    args = []
    for name in chosen:
        args += [name, draw(table[name])]
    return args


@SETTINGS
@given(data=st.data())
def test_train_never_tracebacks(place, data, monkeypatch):
    monkeypatch.chdir(place)
    args = ["train", "--data-dir", data.draw(st.one_of(st.just(str(place / "empty-data")), paths(place))),
            "--no-progress"]
    if data.draw(st.booleans()):
        args += ["--out", data.draw(paths(place))]
    args += _options(TRAIN, data.draw)
    args += data.draw(st.lists(st.sampled_from(TRAIN_FLAGS), unique=True, max_size=2))
    check(args)


@SETTINGS
@given(data=st.data())
def test_reproduce_never_tracebacks(place, data, monkeypatch):
    monkeypatch.chdir(place)
    args = ["reproduce", data.draw(st.sampled_from(FIGURES)), "--no-progress",
            "--data-dir", data.draw(st.one_of(st.just(str(place / "empty-data")), paths(place)))]
    if data.draw(st.booleans()):
        args += ["--out", data.draw(paths(place))]
    args += _options(REPRODUCE, data.draw)
    if data.draw(st.booleans()):
        args.append("--fresh")
    check(args)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_device_never_tracebacks(place, data, monkeypatch):
    monkeypatch.chdir(place)
    command = data.draw(st.sampled_from(DEVICE))
    # Valid runs simulate for real: keep them small (the hostile values are the point here).
    samples = data.draw(st.one_of(st.sampled_from(["1", "2", "3"]), NUMBER.filter(lambda v: not v.strip().isdigit())))
    args = ["device", command, "--out", data.draw(paths(place)), "--samples", samples]
    if command == "all" and samples.strip().isdigit():
        args[-1] = "x"  # every figure at once is covered by test_device_cli; here only its validation
    if command == "calibrate":  # its required CSV: a hostile path (a good one is test_device_cli's)
        args += ["--csv", data.draw(paths(place))]
    if data.draw(st.booleans()):
        args += ["--seed", data.draw(NUMBER)]
    check(args)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.one_of(st.sampled_from(["rule", "Rule", "bogus", "", "config", "ECG", "x" * 100]), st.text(max_size=8)))
def test_params_never_tracebacks(name):
    check(["params", name])


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_compare_never_tracebacks(place, data, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    contents = ["", "garbage", "[]", "{}", '{"config": {}}', '{"config": {}, "final_test_accuracy": []}',
                '{"config": [], "final_test_accuracy": [0.5]}', '{"config": {}, "final_test_accuracy": [0.5, "x"]}',
                '{"config": {"a": 1}, "final_test_accuracy": [0.5, 0.7]}', "\xff\xfe", "null", "1e999"]
    args = ["compare"]
    for i, content in enumerate(data.draw(st.lists(st.sampled_from(contents + [None]), min_size=1, max_size=3))):
        folder = runs / f"run{i}"
        folder.mkdir()
        if content is not None:
            (folder / "results.json").write_bytes(content.encode("utf-8", "surrogateescape"))
        args.append(str(folder))
    args += data.draw(st.lists(st.sampled_from([str(place / "nope"), str(place / "a-file"), ""]), max_size=1))
    check(args)


def test_the_check_recognises_a_failure(monkeypatch):
    """The property's own check fails on a traceback and on a message that names nothing typed."""
    import ferristor.cli.params as params_module
    monkeypatch.setattr(params_module, "config_classes", lambda: 1 / 0)
    with pytest.raises(AssertionError, match="exit 1"):
        check(["params"])
    from ferristor.errors import FerristorError
    monkeypatch.setattr(params_module, "config_classes", lambda: (_ for _ in ()).throw(FerristorError("vague")))
    with pytest.raises(AssertionError, match="error: vague"):
        check(["params", "rule"])
    assert os.environ.get("FERRISTOR_OFFLINE") == "1"  # tests never download
