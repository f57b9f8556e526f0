import json

import numpy as np
import pytest

from ferristor.atomic import atomic_write
from ferristor.errors import ConfigError
from ferristor.experiments.sweep import LocalExecutor, load_result, result_path, run_sweep, trial_key

TRIALS = [{"k": k, "seed": s, "lr": 0.1} for k in (1, 10, 100) for s in (0, 1)]


class Counting:
    """A trial function that records its calls and can fail on a chosen config."""

    def __init__(self, fail_on: dict | None = None, error=RuntimeError):
        self.calls, self.fail_on, self.error = [], fail_on, error

    def __call__(self, config: dict) -> dict:
        if config == self.fail_on:
            raise self.error("interrupted")
        self.calls.append(config)
        return {"accuracy": 0.5 + config["k"] / 1000 + config["seed"] / 10}


def test_key_is_stable_and_order_independent():
    c = {"dataset": "mnist", "k": 100, "p": 0.2, "sizes": [784, 200, 10]}
    # Pinned (sha256 of the compact sorted JSON): a change of this value would orphan every saved result of every sweep.
    assert trial_key(c) == "b23d9318bb9bde9f"
    assert trial_key(dict(reversed(list(c.items())))) == trial_key(c)
    assert trial_key({**c, "sizes": (784, 200, 10)}) == trial_key(c)
    assert trial_key({**c, "k": np.int64(100), "p": np.float64(0.2)}) == trial_key(c)
    assert trial_key({**c, "k": 101}) != trial_key(c)
    assert trial_key({**c, "nested": {"a": 1, "b": 2}}) == trial_key({**c, "nested": {"b": 2, "a": 1}})
    for bad in ({1: "x"}, {"lr": float("nan")}, {"f": object()}):
        with pytest.raises(ConfigError):
            trial_key(bad)


def test_results_in_trial_order_and_finished_points_skipped(tmp_path):
    fn = Counting()
    first = run_sweep(TRIALS, fn, tmp_path, progress=False)
    assert len(fn.calls) == len(TRIALS)
    assert [r["accuracy"] for r in first] == [0.5 + t["k"] / 1000 + t["seed"] / 10 for t in TRIALS]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{trial_key(t)}.json" for t in TRIALS)
    again = Counting()
    assert run_sweep(TRIALS, again, tmp_path, progress=False) == first
    assert again.calls == []
    # Adding points runs only the new ones.
    more = TRIALS + [{"k": 1000, "seed": 0, "lr": 0.1}]
    extra = Counting()
    assert run_sweep(more, extra, tmp_path, progress=False)[:-1] == first
    assert extra.calls == [more[-1]]


def test_duplicate_configs_run_once(tmp_path):
    fn = Counting()
    out = run_sweep([TRIALS[0], TRIALS[1], dict(TRIALS[0])], fn, tmp_path, progress=False)
    assert len(fn.calls) == 2 and out[0] == out[2]


def test_resume_after_interruption(tmp_path):
    stop = Counting(fail_on=TRIALS[3], error=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(TRIALS, stop, tmp_path, progress=False)
    assert stop.calls == TRIALS[:3]
    assert [load_result(tmp_path, t) is not None for t in TRIALS] == [True] * 3 + [False] * 3
    resume = Counting()
    out = run_sweep(TRIALS, resume, tmp_path, progress=False)
    assert resume.calls == TRIALS[3:]
    assert out == run_sweep(TRIALS, Counting(), tmp_path / "fresh", progress=False)


def test_no_partial_file_on_exception(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write('{"half": ')
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
    # A result that cannot be serialised leaves nothing behind either.
    with pytest.raises(TypeError):
        run_sweep([TRIALS[0]], lambda c: {"x": object()}, tmp_path / "sweep", progress=False)
    assert list((tmp_path / "sweep").iterdir()) == []


def test_corrupt_or_foreign_result_is_rerun(tmp_path):
    run_sweep(TRIALS, Counting(), tmp_path, progress=False)
    result_path(tmp_path, TRIALS[0]).write_text('{"key": "trunc')  # a partial file
    foreign = json.loads(result_path(tmp_path, TRIALS[2]).read_text())
    foreign["config"]["k"] = 999  # a file whose config does not match its name
    result_path(tmp_path, TRIALS[1]).write_text(json.dumps(foreign))
    fn = Counting()
    run_sweep(TRIALS, fn, tmp_path, progress=False)
    assert fn.calls == TRIALS[:2]


def test_pluggable_executor(tmp_path):
    class Reversed:
        """Finishes trials out of order, as a parallel executor would."""

        def map(self, fn, trials):
            for i, c in reversed(list(trials)):
                yield i, fn(c)

    out = run_sweep(TRIALS, Counting(), tmp_path, progress=False, executor=Reversed())
    assert out == run_sweep(TRIALS, Counting(), tmp_path / "b", progress=False, executor=LocalExecutor())


def test_progress_bar_runs(tmp_path, capsys):
    run_sweep(TRIALS[:2], Counting(), tmp_path, progress=True)
    assert "2/2" in capsys.readouterr().err


def test_process_executor_runs_trials_in_workers_and_saves_each(tmp_path):
    from ferristor.experiments.sweep import ProcessExecutor
    # `dict` is a picklable trial function: each result is a copy of its config
    out = run_sweep(TRIALS, dict, tmp_path, progress=False, executor=ProcessExecutor(2))
    assert out == TRIALS
    assert all(load_result(tmp_path, t) == t for t in TRIALS)
    again = Counting()
    assert run_sweep(TRIALS, again, tmp_path, progress=False) == TRIALS and again.calls == []


def test_process_executor_propagates_a_failure_and_keeps_what_finished(tmp_path):
    from ferristor.experiments.sweep import ProcessExecutor
    with pytest.raises(TypeError):  # dict([1, 2, 3]) fails in the worker
        run_sweep([{"k": 1}, [1, 2, 3], {"k": 2}], dict, tmp_path, progress=False, executor=ProcessExecutor(1))
    assert load_result(tmp_path, {"k": 1}) == {"k": 1}  # finished before the failure: kept
    with pytest.raises(ConfigError, match="workers"):
        ProcessExecutor(0)
