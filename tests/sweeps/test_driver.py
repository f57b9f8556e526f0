"""The driver on the in-process, thread and process executors: results, resume, failures, retries, lock."""
import json

import pytest

from ferristor.locking import FolderBusy, exclusive
from ferristor.sweeps.driver import LOCK_NAME
from ferristor.sweeps.executors import InProcessExecutor, ProcessExecutor, ThreadExecutor, make_executor
from ferristor.sweeps.run import plan, run_plan
from ferristor.sweeps.store import open_store

from .conftest import rows, small_spec


@pytest.fixture(scope="module")
def in_process(tiny_mnist, tmp_path_factory):
    """``small_spec()``'s sweep, its trials one after the other in this process: (folder, outcome).
    Read, never written, by the tests taking it."""
    folder = tmp_path_factory.mktemp("in-process")
    return folder, run_plan(plan(small_spec(), folder, given={"mnist": tiny_mnist}), in_process=True, progress=False)


def test_rows_match_the_results(in_process):
    """(Local processes and Ray give these same rows: tests/sweeps/test_ray.py.)"""
    folder, a = in_process
    assert a.count("done") == 2 and a.ran == 2
    # every row is the trial's results: accuracy per seed and evaluation, the ledger on the final one
    store = open_store(folder, readonly=True)
    evals = store.evals()
    for t in store.trials("done"):
        res = t["result"]
        mine = [e for e in evals if e["trial"] == t["key"]]
        assert len(mine) == len(res["history"]) * len(res["seeds"]) == 4
        for e in mine:
            h = next(h for h in res["history"] if h["step"] == e["step"])
            assert e["test_accuracy"] == h["test_accuracy"][e["replica"]] and e["seed"] == res["seeds"][e["replica"]]
            if e["final"]:
                assert json.loads(e["ledger"]) == res["ledger"][e["replica"]]["network"]
                assert e["train_seconds"] == res["timing"]["train_seconds"]
        assert t["code_version"] == res["code_version"] and t["versions"]["torch"]
    assert store.db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 8  # the SQL view
    assert store.db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_trials_in_threads_give_the_in_process_rows(tiny_mnist, tmp_path, in_process):
    """Two trials side by side in threads (on a GPU, each on its own CUDA stream) record exactly what
    one after the other in this process records: no state leaks from one trial into the other."""
    b = run_plan(plan(small_spec(), tmp_path / "b", given={"mnist": tiny_mnist}), executor=ThreadExecutor(2),
                 progress=False)
    assert b.count("done") == 2 and b.ran == 2
    assert rows(in_process[0]) == rows(tmp_path / "b")
    assert isinstance(make_executor(2, threads=True), ThreadExecutor)


@pytest.mark.parametrize("devices,workers,in_process,kind", [
    (("cuda", "cuda:0"), 3, False, ThreadExecutor), (("cuda", "cpu"), 3, False, ProcessExecutor),
    (("cuda",), 1, False, ProcessExecutor), (("cuda",), 3, True, InProcessExecutor)])
def test_trials_that_all_run_on_a_gpu_share_it_as_threads(monkeypatch, tmp_path, devices, workers, in_process, kind):
    import ferristor.sweeps.run as run
    from ferristor.sweeps.run import Plan
    from ferristor.sweeps.trials import Trial
    seen = []
    monkeypatch.setattr(run, "run_sweep", lambda trials, folder, data, *, executor, **kw: seen.append(executor))
    trials = [Trial(key=str(i), params={}, config={"device": d, "seeds": [0]}) for i, d in enumerate(devices)]
    run_plan(Plan(None, tmp_path, trials, {}, "x"), workers=workers, in_process=in_process, progress=False)
    assert type(seen[0]) is kind


@pytest.mark.gpu
def test_gpu_trials_side_by_side_on_streams_give_the_sequential_rows(tiny_mnist, tmp_path):
    """On a GPU: two trials at once, each in a thread on its own CUDA stream, capturing and replaying
    their graphs side by side, record what the same trials one after the other record."""
    spec = small_spec(sets=("device=cuda",))
    a = run_plan(plan(spec, tmp_path / "a", given={"mnist": tiny_mnist}), in_process=True, progress=False)
    b = run_plan(plan(spec, tmp_path / "b", given={"mnist": tiny_mnist}), executor=ThreadExecutor(2), progress=False)
    assert a.count("done") == b.count("done") == 2
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_a_failing_trial_in_a_thread_is_retried_then_recorded(tiny_mnist, tmp_path, monkeypatch):
    import ferristor.experiments.train as T

    def broken(cfg, *a, **kw):
        raise RuntimeError("boom")
    monkeypatch.setattr(T, "train", broken)
    out = run_plan(plan(small_spec(), tmp_path, given={"mnist": tiny_mnist}), executor=ThreadExecutor(2),
                   max_retries=1, progress=False)
    assert out.count("failed") == 2 and all("boom" in e for e in out.errors.values())


def test_rerun_skips_done_trials_and_adds_new_ones(tiny_mnist, tmp_path):
    p = plan(small_spec(), tmp_path, given={"mnist": tiny_mnist})
    run_plan(p, in_process=True, progress=False)
    before = rows(tmp_path)
    again = run_plan(p, in_process=True, progress=False)
    assert again.ran == 0 and rows(tmp_path) == before
    more = run_plan(plan(small_spec("rule.k=10,100,1000"), tmp_path, given={"mnist": tiny_mnist}), in_process=True,
                    progress=False)
    assert more.ran == 1 and set(before) < set(rows(tmp_path))


def test_a_failing_trial_is_retried_then_recorded_and_reported(tiny_mnist, tmp_path, monkeypatch):
    # one trial's training raises, every time (a network that does not fit its data is refused by plan)
    import ferristor.experiments.train as T
    real = T.train

    def broken(cfg, *a, **kw):
        if cfg.network.sizes[1] == 30:
            raise RuntimeError("no room for 30 hidden units")
        return real(cfg, *a, **kw)
    monkeypatch.setattr(T, "train", broken)
    spec = small_spec("network.sizes=[[784,20,10],[784,30,10]]", seeds="0")
    p = plan(spec, tmp_path, given={"mnist": tiny_mnist})
    out = run_plan(p, in_process=True, max_retries=1, progress=False)
    bad = next(t for t in p.trials if t.config["network"]["sizes"][1] == 30)
    assert out.status[bad.key] == "failed" and out.count("done") == 1
    assert "no room for 30" in out.errors[bad.key] and "RuntimeError" in out.errors[bad.key]
    store = open_store(tmp_path, readonly=True)
    row = next(t for t in store.trials() if t["key"] == bad.key)
    assert row["attempts"] == 2 and row["failures"] == 2  # the first try and one retry
    store.close()
    from ferristor.sweeps.driver import summary_lines
    text = "\n".join(summary_lines(out))
    assert "1 failed" in text and "FAILED network.sizes=[784, 30, 10]" in text and "--retry-failed" in text
    again = run_plan(p, in_process=True, progress=False)  # a rerun leaves it failed, without running it
    assert again.ran == 0 and again.count("failed") == 1


@pytest.mark.slow
def test_a_crashed_worker_is_replaced_and_its_trial_resumes_from_its_checkpoint(tiny_mnist, tmp_path, monkeypatch):
    """The worker process is killed (SIGKILL) right after the trial's second checkpoint reached the
    driver; the retry gets that checkpoint and ends with the numbers of an uninterrupted run."""
    import os
    import signal
    spec = small_spec("rule.k=10", sets=("checkpoint_every=0.05",), seeds="0-1")  # killed at its 2nd of 5 checkpoints
    ref = run_plan(plan(spec, tmp_path / "ref", given={"mnist": tiny_mnist}), in_process=True, progress=False)
    assert ref.count("done") == 1
    p = plan(spec, tmp_path / "s", given={"mnist": tiny_mnist})
    ex = ProcessExecutor(1)
    seen, resumed = [], []
    real_sink_submit = ex.submit

    def submit(job):
        resumed.append(job.resume is not None)
        real_sink_submit(job)
    ex.submit = submit

    import ferristor.sweeps.driver as driver
    real = driver._Run.sink

    def sink(self, key, kind, payload):
        real(self, key, kind, payload)
        if kind == "checkpoint":
            seen.append(payload["step"])
            if len(seen) == 2:
                os.kill(self.executor.pool[0].process.pid, signal.SIGKILL)
    monkeypatch.setattr(driver._Run, "sink", sink)
    out = run_plan(p, executor=ex, progress=False)
    assert out.count("done") == 1 and resumed == [False, True]
    assert rows(tmp_path / "s") == rows(tmp_path / "ref")
    store = open_store(tmp_path / "s", readonly=True)
    t = store.trials()[0]
    assert t["attempts"] == 2 and t["failures"] == 1 and "died" in (t["error"] or "")  # last error kept for the record
    store.close()


def test_two_drivers_on_one_folder_are_refused(tiny_mnist, tmp_path, lock_held_elsewhere):
    p = plan(small_spec(), tmp_path, given={"mnist": tiny_mnist})
    with lock_held_elsewhere(tmp_path, "sweep folder", LOCK_NAME) as pid:
        with pytest.raises(FolderBusy, match=f"sweep folder {tmp_path} is in use by another process \\(pid {pid} "):
            run_plan(p, in_process=True, progress=False)
    assert run_plan(p, in_process=True, progress=False).count("done") == 2  # free again
    with exclusive(tmp_path, "sweep folder", LOCK_NAME):  # one process may take it again (the CLI, then the driver)
        assert run_plan(p, in_process=True, progress=False).ran == 0


def test_wrong_results_are_not_recorded(tiny_mnist, tmp_path, monkeypatch):
    import ferristor.sweeps.executors as executors
    real = executors.run_job

    def lying(job, dataset, emit):  # a worker that returns another trial's seeds
        def filt(kind, payload):
            if kind == "done":
                payload = {**payload, "seeds": [7, 8]}
            emit(kind, payload)
        real(job, dataset, filt)
    monkeypatch.setattr(executors, "run_job", lying)
    out = run_plan(plan(small_spec("rule.k=10"), tmp_path, given={"mnist": tiny_mnist}), in_process=True,
                   max_retries=0, progress=False)
    assert out.count("failed") == 1 and "wrong results: seeds [7, 8]" in next(iter(out.errors.values()))
    assert rows(tmp_path) == []


def test_validation_accuracy_is_recorded_when_the_config_holds_a_set_out(tiny_mnist, tmp_path):
    out = run_plan(plan(small_spec("rule.k=10", sets=("validation=0.1",), seeds="0-1"), tmp_path,
                        given={"mnist": tiny_mnist}), in_process=True, progress=False)
    assert out.count("done") == 1
    store = open_store(tmp_path, readonly=True)
    res = store.trials("done")[0]["result"]
    evals = store.evals()
    store.close()
    assert [e["val_accuracy"] for e in evals] == [h["val_accuracy"][i] for h in res["history"] for i in range(2)]


def test_a_finished_trial_line_shows_the_device_figures(monkeypatch):
    """A device sweep varies energy and operations: its per-trial lines had shown accuracy alone."""
    from ferristor.sweeps.progress import Progress
    lines = []
    progress = Progress(2, 0, 0, "t", enabled=True)
    monkeypatch.setattr(progress, "line", lines.append)
    net = {"energy_nJ": {"per_device": 38.4}, "memristor_ops": {"mean": 12000.0},
           "endurance": {"fecap_margin": 75.0, "memristor_margin": 17.0}}
    progress.started({"ledger.memristor_energy_pj": 1.0}, "vm:1", 1)
    progress.finished({"ledger.memristor_energy_pj": 1.0},
                      {"final_test_accuracy": [0.9, 0.92], "ledger": [{"network": net}] * 2, "timing": {"train_seconds": 3.0}})
    progress.finished({"rule.k": 10}, {"final_test_accuracy": [0.9], "timing": {"train_seconds": 1.0}})
    progress.close()
    assert lines[1] == ("done   ledger.memristor_energy_pj=1.0  accuracy 91.00 ± 1.41 % (2 seeds)  38.4 nJ · 12,000 "
                        "memristor ops / device  3.0 s")
    assert lines[2] == "done   rule.k=10  accuracy 90.00 % (1 seed)  1.0 s"  # was '(1 seeds)'


def test_trials_that_differ_only_in_ledger_costs_train_once(tiny_mnist, tmp_path, monkeypatch):
    """A grid over energy per operation or endurance ratings crosses no training: one trial of each
    training trains, its twins are priced from its counted operations — rows equal to those the twins
    give when trained — and a finished sweep takes new costs without training at all."""
    given = {"mnist": tiny_mnist}
    both = run_plan(plan(small_spec("rule.k=10,100", "ledger.memristor_energy_pj=1,0.3"), tmp_path / "both", given=given),
                    in_process=True, progress=False)
    assert both.count("done") == 4 and both.ran == 4 and both.priced == 2
    alone = run_plan(plan(small_spec("rule.k=10,100", sets=("ledger.memristor_energy_pj=0.3",)), tmp_path / "alone",
                          given=given), in_process=True, progress=False)
    assert alone.priced == 0 and alone.ran == 2
    assert set(rows(tmp_path / "alone")) < set(rows(tmp_path / "both"))  # same keys, accuracies and ledgers
    energies = {json.loads(e[-1])["energy_nJ"]["memristor_total"] for e in rows(tmp_path / "both") if e[-1]}
    assert len(energies) == 4  # two trainings × two prices

    import ferristor.experiments.train as T
    monkeypatch.setattr(T, "train", lambda *a, **kw: pytest.fail("a priced trial trained"))
    again = run_plan(plan(small_spec("rule.k=10,100", "ledger.memristor_energy_pj=1,0.3,2.5"), tmp_path / "both",
                          given=given), in_process=True, progress=False)
    assert again.count("done") == 6 and again.ran == 2 and again.priced == 2
    store = open_store(tmp_path / "both", readonly=True)
    sources = {t["key"]: t["result"].get("priced_from") for t in store.trials("done")}
    store.close()
    assert sum(v is not None for v in sources.values()) == 4 and all(sources[v] is None for v in sources.values() if v)
    store = open_store(tmp_path / "both", readonly=True)
    seconds = {t["key"]: t["result"]["timing"]["train_seconds"] for t in store.trials("done")}
    store.close()
    assert all(seconds[k] == 0.0 for k, v in sources.items() if v) and all(seconds[k] > 0 for k, v in sources.items() if not v)


def test_the_results_view_reads_a_run_whose_memristors_were_never_written(tiny_mnist, tmp_path):
    """k beyond the run: no transfer, an infinite memristor margin. The store had kept it as Infinity,
    which SQLite's JSON functions refuse, so `SELECT * FROM results` failed ('malformed JSON')."""
    import math
    out = run_plan(plan(small_spec("rule.k=100000"), tmp_path, given={"mnist": tiny_mnist}), in_process=True,
                   progress=False)
    assert out.count("done") == 1
    store = open_store(tmp_path, readonly=True)
    try:
        assert len(store.db.execute("SELECT * FROM results").fetchall()) == 4
        (t,) = store.trials("done")
        assert all(math.isinf(r["network"]["endurance"]["memristor_margin"]) for r in t["result"]["ledger"])
    finally:
        store.close()
