"""What a user walk-through found in the sweep's reporting: a point whose seeds are split over trials
(seeds_per_trial) shown per trial, trials recorded as failed counted as still to run, a trial of a
killed driver shown as running, 'results' of an unfinished sweep saying no trial matches, a column of
5,280 beside 959.9636, compile_seconds offered nowhere, '1 trials'."""
import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.sweeps import table
from ferristor.sweeps.driver import Outcome, summary_lines
from ferristor.sweeps.run import plan, trial_table
from ferristor.sweeps.spec import build_spec
from ferristor.sweeps.store import open_store


def _spec(seeds="0-1", per_trial=1, grid="rule.k=10,100"):
    return build_spec(None, sets=("mode=hm", "epochs=0.005", "test_limit=200"), grids=(grid,), seeds=seeds,
                      seeds_per_trial=per_trial)


def _results(t, accs, compile_s=0.5):
    return {"seeds": t.seeds, "config": t.config, "final_test_accuracy": accs,
            "history": [{"step": 10, "epoch": 0.005, "test_accuracy": accs}],
            "timing": {"train_seconds": 1.5, "compile_seconds": compile_s, "sample_replicas_per_second": 7.0}}


@pytest.fixture
def split(tiny_mnist, tmp_path):
    """Two points, each's seeds 0 and 1 in a trial of their own."""
    p = plan(_spec(), tmp_path, given={"mnist": tiny_mnist})
    store = open_store(tmp_path)
    store.register(p.trials)
    return p, store


def test_the_closing_table_is_one_row_per_point_over_all_its_seeds(split):
    """Before: one row per trial, 'rule.k=10 seeds=[0]', 'rule.k=10 seeds=[1]', each one seed's accuracy."""
    p, store = split
    accs = {0: [0.5], 1: [0.7]}
    for t in p.trials[:3]:  # the second point's seed 1 not done
        store.finish(t.key, _results(t, accs[t.seeds[0]]), "v")
    store.close()
    status = {t.key: "done" for t in p.trials[:3]} | {p.trials[3].key: "failed"}
    lines = trial_table(p, Outcome(p.folder, p.trials, status)).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].split() == ["rule.k=10", "60.00", "±", "14.14", "%", "(2", "seeds)"], lines
    assert lines[1].split() == ["rule.k=100", "50.00", "%", "(1", "seed);", "1", "trial", "failed"], lines


def test_dry_run_tells_failed_and_interrupted_trials_apart(split):
    p, store = split
    store.mark_running(p.trials[0].key)  # a driver killed mid-trial: no driver holds the folder now
    store.fail(p.trials[1].key, "ValueError: boom", give_up=True)
    store.close()
    text = p.dry_run_text()
    rows = text.splitlines()
    assert rows[0].startswith("4 trials in") and rows[1].startswith("(interrupted: its driver stopped mid-trial")
    trials = [r.split() for r in rows[2:-1]]
    assert [t[2] for t in trials] == ["interrupted", "failed", "pending", "pending"], text  # it had said 'running'
    tail = rows[-1]
    # the failed one had been counted among 'still to run', though it runs only with --retry-failed
    assert "recorded as failed, run only with --retry-failed" in tail and "(and " in tail, tail
    todo = tail.split(" still to run")[0].rsplit(", ", 1)[1]
    with_retry = p.dry_run_text(retry_failed=True).splitlines()[-1]
    assert "recorded as failed" not in with_retry and with_retry.split(" still to run")[0].rsplit(", ", 1)[1] != todo


def test_results_of_an_unfinished_sweep_say_how_far_it_is(split):
    """Before: '(no rows: no finished trial matches)'."""
    p, store = split
    store.mark_running(p.trials[0].key)
    store.close()
    r = CliRunner().invoke(cli, ["results", str(p.folder)])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "(no rows: no finished trial yet (1 interrupted, 3 pending))", r.output


def test_results_offer_compile_seconds_and_format_each_column_alike(split):
    p, store = split
    for t, compile_s in zip(p.trials, (959.9636, 5280.0, 12.0, 1.0)):
        store.finish(t.key, _results(t, [0.5], compile_s), "v")
    store.close()
    store = open_store(p.folder, readonly=True)
    rows = table.tidy_rows(store, final_only=True)
    store.close()
    assert [r["compile_seconds"] for r in rows] == [959.9636, 5280.0, 12.0, 1.0]
    lines = table.to_text(rows).splitlines()
    col = lines[0].split().index("compile_seconds")
    assert [line.split()[col] for line in lines[2:]] == ["960", "5,280", "12", "1"], lines


def test_to_text_keeps_decimals_in_a_column_of_small_numbers():
    rows = [{"trial": "a", "x": 0.12345, "final": True}, {"trial": "b", "x": 2.0, "final": True}]
    assert [line.split()[1] for line in table.to_text(rows).splitlines()[2:]] == ["0.1235", "2.0000"]


def test_one_trial_is_one_trial():
    t = type("T", (), {"key": "k", "params": {}})()
    assert next(summary_lines(Outcome("f", [t], {"k": "done"}))).startswith("sweep f: 1/1 trial done,")
