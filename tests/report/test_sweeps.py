"""Reading sweeps and laying them out: stores, swept axes, the paper's values beside the points."""
import json

import pytest

from ferristor.errors import DataError
from ferristor.experiments import paper_values as pv
from ferristor.report import build_report
from ferristor.report.sweep_page import axes
from ferristor.report.sweeps import read_sweep


def _write(folder, trials):
    (folder / "trials").mkdir(parents=True)
    for i, (config, result) in enumerate(trials):
        (folder / "trials" / f"{i:04d}.json").write_text(json.dumps({"key": f"{i:04d}", "config": config, "result": result}))
    return folder


def _fig5f_like(folder):
    """What `reproduce fig5f` writes, with made-up accuracies: two settings × three modes."""
    trials = []
    for s, setting in enumerate(("mnist-online", "fashion-mnist-online")):
        for m, mode in enumerate(("fp", "hm", "hm-var")):
            result = {"accuracy": [80.0 + s + m, 81.0 + s + m], "k": 100, "seconds": 1.0, "samples_per_replica": 600}
            if mode != "fp":
                result.update(fecap_ops_per_device=264.0, fecap_ops_worst=300.0, memristor_ops_per_device=12.0,
                              memristor_ops_worst=12.0, energy_fecap_nJ=0.0264, energy_memristor_nJ=0.012)
            trials.append(({"figure": "fig5f", "setting": setting, "mode": mode, "k": 100, "seeds": [0, 1],
                            "epoch_scale": 0.001, "train_config": {"rule": {"p": 0.2}, "batch": 1}}, result))
    return _write(folder, trials)


def test_the_reproduce_sweep_is_read_with_its_axis(small_sweep):
    sweep = read_sweep(small_sweep)
    assert sweep.source == "sweep.sqlite" and len(sweep.trials) == 3 and sweep.skipped == []
    assert axes(sweep) == ["k"]
    assert sorted(t.params["k"] for t in sweep.trials) == [5, 20, 100]
    assert all(t.train_config["rule"]["k"] == t.params["k"] for t in sweep.trials)


def test_categorical_axes_with_the_papers_values(tmp_path):
    sweep = read_sweep(_fig5f_like(tmp_path / "fig5f"))
    assert axes(sweep) == ["setting", "mode"]
    page, figs = build_report([str(tmp_path / "fig5f")])
    acc = next(f for f in figs if f.id.endswith("-setting-accuracy"))
    assert acc.categorical_x and [t.name for t in acc.traces][:2] == ["ours, mean ± std, mode=fp", "paper, mode=fp"]
    paper = next(t for t in acc.traces if t.name == "paper, mode=hm-var")
    assert paper.x == ["mnist-online", "fashion-mnist-online"]  # the paper's order of settings
    assert paper.y == [pv.FIG5F["mnist-online"]["hm-var"], pv.FIG5F["fashion-mnist-online"]["hm-var"]]
    assert any(f.id.endswith("-mode-ops") for f in figs) and "Trained at 0.001 × the paper" in page


def test_a_reproduce_folder_stands_for_its_sweeps(small_sweep, tmp_path):
    import shutil

    from ferristor.report.inputs import resolve
    shutil.copytree(small_sweep, tmp_path / "out" / "fig5cde")
    _fig5f_like(tmp_path / "out" / "fig5f")
    runs, sweeps = resolve([str(tmp_path / "out")])
    assert runs == [] and [s.name for s in sweeps] == ["out/fig5cde", "out/fig5f"]
    page, _ = build_report([str(tmp_path / "out")])
    assert 'id="sweep-out-fig5cde"' in page and 'id="sweep-out-fig5f"' in page


def test_unreadable_points_are_named_and_left_out(tmp_path):
    folder = tmp_path / "s"
    _fig5f_like(folder)  # a sweep from before the results store: trials/*.json
    (folder / "trials" / "zz-broken.json").write_text("{not json")
    sweep = read_sweep(folder)
    assert sweep.source == "trials/*.json"
    assert len(sweep.trials) == 6 and sweep.skipped and sweep.skipped[0].startswith("zz-broken.json")
    assert "zz-broken.json" in build_report([str(folder)])[0]


def test_stores_that_cannot_be_read(tmp_path):
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    with pytest.raises(DataError, match="no readable trial"):
        read_sweep(tmp_path / "empty")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "sweep.sqlite").write_bytes(b"not a database, " * 100)
    with pytest.raises(DataError, match="sweep.sqlite: not a readable results store"):
        build_report([str(tmp_path / "store")])


@pytest.mark.parametrize("train_config, said", [
    ({"rule": None}, "'train_config.rule' is null, expected an object"),
    ({"rule": {"p": "0.2"}}, "'train_config.rule.p' is \"0.2\", expected a number or null"),
    ({"ledger": {"memristor_endurance_cycles": "1e5"}}, "'train_config.ledger.memristor_endurance_cycles' is \"1e5\""),
    (["mnist"], "'train_config' is [\"mnist\"], expected an object or null"),
])
def test_a_point_whose_config_has_a_field_of_the_wrong_type_is_left_out(tmp_path, train_config, said):
    """A hand-edited trials/*.json had crashed the page ('unexpected AttributeError … a bug')."""
    folder = _fig5f_like(tmp_path / "s")
    record = json.loads((folder / "trials" / "0001.json").read_text())
    record["config"]["train_config"] = train_config
    (folder / "trials" / "0001.json").write_text(json.dumps(record))
    sweep = read_sweep(folder)
    assert len(sweep.trials) == 5 and len(sweep.skipped) == 1 and sweep.skipped[0].startswith(f"0001.json ({said}")
    page, _ = build_report([str(folder)])
    assert "0001.json" in page


def test_a_null_accuracy_of_a_point_is_shown_as_not_recorded(tmp_path):
    """A strict writer's null among a point's accuracies had escaped the trials/ reader as a TypeError
    ('unexpected … a bug'); a value of another type leaves the point out, named."""
    folder = _fig5f_like(tmp_path / "s")
    for name, accuracy in (("0001.json", [None, 81.0]), ("0002.json", ["high", 81.0])):
        record = json.loads((folder / "trials" / name).read_text())
        record["result"]["accuracy"] = accuracy
        (folder / "trials" / name).write_text(json.dumps(record))
    sweep = read_sweep(folder)
    assert len(sweep.trials) == 5 and sweep.skipped == ['0002.json (\'result.accuracy[0]\' is "high", expected an accuracy from 0 to 100 (%) or null)']
    page, _ = build_report([str(folder)])
    assert "<td>81.00</td><td>n/a–n/a</td>" in page  # the mean of the seed that records one; min–max unknown


def test_a_plain_sweeps_point_that_trains_a_paper_setting_gets_its_value_and_caveats(tmp_path):
    """A `ferristor sweep` point (no reproduce 'setting') that trains Fig. 5f's MNIST hm-var gets the
    paper's value, numbered to the ways it differs (epochs, the preset's fields); other k get none."""
    from ferristor.experiments.presets import PRESETS
    from ferristor.experiments.reproduce import fig5f_trials
    base = next(t for t in fig5f_trials([0], settings=("mnist-online",), preset=PRESETS["paper"]) if t["mode"] == "hm-var")
    trials = []
    for k in (50, 100):
        cfg = json.loads(json.dumps(base["train_config"]))
        cfg["rule"]["k"], cfg["epochs"] = k, 1
        trials.append(({"rule.k": k, "train_config": cfg}, {"accuracy": [90.0, 91.0], "k": k, "samples_per_replica": 600,
                                                            "memristor_ops_worst": 1200 / k, "fecap_ops_worst": 300.0}))
    _write(tmp_path / "plain", trials)
    assert axes(read_sweep(tmp_path / "plain")) == ["rule.k"]  # not a second 'k' axis from the result's k
    page, figs = build_report([str(tmp_path / "plain")])
    assert any(f.id.endswith("-lifetime-plot") for f in figs)  # lifetime against the grid's rule.k
    acc = next(f for f in figs if f.id.endswith("-accuracy") and "paper" in [t.name for t in f.traces])
    assert next(t for t in acc.traces if t.name == "paper").y[1] == pv.FIG5F["mnist-online"]["hm-var"]
    assert f'<span class="paper">{pv.FIG5F["mnist-online"]["hm-var"]:.1f}</span><sup>1</sup>' in page
    assert "<sup>1</sup> rule.k=100: this run trained 1 epochs, the paper 10" in page
    assert page.count('<span class="paper">') == 1  # k = 50 is not a paper point


def _edited_store(small_sweep, dest, sql, *args):
    """A copy of the small sweep with ``sql`` run on its store; returns the folder."""
    import shutil
    import sqlite3
    shutil.copytree(small_sweep, dest)
    db = sqlite3.connect(dest / "sweep.sqlite")
    db.execute(sql, args)
    db.commit()
    db.close()
    return dest


def _first_done(small_sweep) -> str:
    from ferristor.sweeps.store import open_store
    store = open_store(small_sweep, readonly=True)
    try:
        return store.trials("done")[0]["key"]
    finally:
        store.close()


@pytest.mark.parametrize("column, value", [("result", "{not json"), ("params", "[1, 2]"), ("config", "")])
def test_an_unreadable_trial_row_is_left_out_and_named_by_every_reader(small_sweep, tmp_path, column, value):
    """One corrupt trial row had crashed report, lifetime and results ('unexpected JSONDecodeError … a bug')."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    key = _first_done(small_sweep)
    folder = _edited_store(small_sweep, tmp_path / "fig5cde", f"UPDATE trials SET {column} = ? WHERE key = ?", value, key)
    with pytest.warns(Warning, match=f"trial {key}: trials.{column} "):
        sweep = read_sweep(folder)
    assert len(sweep.trials) == 2 and len(sweep.skipped) == 1 and sweep.skipped[0].startswith(f"{key} (trials.{column} ")
    for args in (["report", folder, "--out", tmp_path / "r.html"], ["lifetime", folder, "--rate", "10"], ["results", folder]):
        r = CliRunner().invoke(cli, [str(a) for a in args])
        assert r.exit_code == 0, r.output
        assert f"warning: skipped: {folder / 'sweep.sqlite'}: trial {key}: trials.{column} " in r.output
    assert key in (tmp_path / "r.html").read_text()
    assert key not in r.output.split("\n", 1)[1]  # results: the other points' rows, not this one's


def test_an_unreadable_evaluation_ledger_is_left_out_and_named(small_sweep, tmp_path):
    from ferristor.sweeps.store import open_store
    from ferristor.sweeps.table import tidy_rows
    key = _first_done(small_sweep)
    folder = _edited_store(small_sweep, tmp_path / "fig5cde", "UPDATE evals SET ledger = 'x' WHERE trial = ? AND seed = 0 "
                           "AND final = 1", key)
    store = open_store(folder, readonly=True)
    try:
        with pytest.warns(Warning, match=f"trial {key} seed 0 step .*evals.ledger is not readable JSON"):
            rows = tidy_rows(store, final_only=True)
    finally:
        store.close()
    assert [r["seed"] for r in rows if r["trial"] == key] == [1]


def test_an_interrupted_sweep_says_what_is_not_done_and_keeps_its_axes(small_sweep, tmp_path):
    """After Ctrl-C following the first point the page had said 'points 1, swept: nothing (one point)'
    with k under 'fixed', and the running and pending trials nowhere."""
    import shutil
    import sqlite3
    folder = tmp_path / "fig5cde"
    shutil.copytree(small_sweep, folder)
    db = sqlite3.connect(folder / "sweep.sqlite")
    keys = {json.loads(p)["k"]: key for key, p in db.execute("SELECT key, params FROM trials")}
    db.execute("UPDATE trials SET status = 'running' WHERE key = ?", (keys[20],))
    db.execute("UPDATE trials SET status = 'failed', error = 'boom\nmore' WHERE key = ?", (keys[100],))
    db.commit()
    db.close()
    sweep = read_sweep(folder)
    assert [t.params["k"] for t in sweep.trials] == [5] and sweep.total == 3
    assert axes(sweep) == ["k"]
    page, figs = build_report([str(folder)])
    assert "<th>points</th><td>1 of 3 done</td>" in page
    assert "<th>swept</th><td>k: 5 (planned: 5, 20, 100)</td>" in page
    assert "<th>not done (left out)</th><td>k=20: running; k=100: failed (boom)</td>" in page
    assert "Not finished: 2 of its 3 points are not done" in page
    assert "k: " not in page.split("<th>fixed</th>")[1].split("</td>")[0]
    assert any(f.id.endswith("-lifetime-plot") for f in figs)


def test_a_finished_sweep_says_nothing_of_unfinished_points(small_sweep):
    page, _ = build_report([str(small_sweep)])
    assert "<th>points</th><td>3</td>" in page and "not done (left out)" not in page and "Not finished" not in page


def test_an_accuracy_out_of_range_leaves_the_point_out_as_a_runs_is_refused(small_sweep, tmp_path):
    """An edited accuracy of 5.0 in the store had been shown as 265.00 ± 332.34 %."""
    key = _first_done(small_sweep)
    folder = _edited_store(small_sweep, tmp_path / "fig5cde", "UPDATE trials SET result = "
                           "json_set(result, '$.final_test_accuracy[0]', 5.0) WHERE key = ?", key)
    sweep = read_sweep(folder)
    assert [t.key for t in sweep.trials if t.key == key] == [] and len(sweep.trials) == 2
    assert sweep.skipped == [f"{key} (trials.result: 'final_test_accuracy[0]' is 5.0, expected an accuracy from 0 to 1 or null)"]
    assert key in build_report([str(folder)])[0]
    old = _fig5f_like(tmp_path / "old")  # a trials/ point holds percent
    record = json.loads((old / "trials" / "0001.json").read_text())
    record["result"]["accuracy"] = [500.0, 81.0]
    (old / "trials" / "0001.json").write_text(json.dumps(record))
    assert read_sweep(old).skipped == ["0001.json ('result.accuracy[0]' is 500.0, expected an accuracy from 0 to 100 (%) or null)"]


def test_an_axis_that_restates_another_is_shown_readably_and_not_plotted(tmp_path):
    """reproduce fig5f's 'options' (none for fp, {'rounding': 'nearest'} for hm and hm-var) had been a
    swept axis of its own, printed as Python reprs, with two plots 'against options'."""
    from ferristor.report.sweep_page import restated
    from ferristor.report.markup import shown
    folder = _fig5f_like(tmp_path / "fig5f")
    for f in (folder / "trials").glob("*.json"):
        record = json.loads(f.read_text())
        if record["config"]["mode"] != "fp":
            record["config"]["options"] = {"rounding": "nearest"}
        f.write_text(json.dumps(record))
    sweep = read_sweep(folder)
    assert axes(sweep) == ["setting", "mode", "options"] and restated(sweep, axes(sweep)) == {"options": "mode"}
    page, figs = build_report([str(folder)])
    assert not any("options" in f.id for f in figs) and any(f.id.endswith("-mode-accuracy") for f in figs)
    assert "options: –, rounding=nearest (follows mode)" in page
    assert "{" not in "".join(t for f in figs for tr in f.traces for t in [tr.name, *map(str, tr.x)])
    assert "&#x27;rounding&#x27;" not in page and "<td>rounding=nearest</td>" in page
    assert shown(None) == "–" and shown({"rounding": "nearest", "p": 0.2}) == "rounding=nearest, p=0.2" and shown([0, 1]) == "0, 1"


def test_a_full_grid_keeps_both_axes(tmp_path):
    sweep = read_sweep(_fig5f_like(tmp_path / "fig5f"))
    from ferristor.report.sweep_page import restated
    assert restated(sweep, axes(sweep)) == {}


# --- a point's seeds in several trials (seeds_per_trial) ------------------------------------------

def _sweep_on(data, out, *args):
    """`ferristor sweep` over two k, two seeds, on ``data`` in place of MNIST (the real driver and store)."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ferristor.data.load_dataset", lambda name, data_dir=None, **kw: data)
        r = CliRunner().invoke(cli, ["sweep", "--set", "mode=hm", "--set", "epochs=0.1", "--grid", "rule.k=5,20",
                                     "--seeds", "0-1", "--in-process", "--threads", "1", "--no-progress",
                                     "--out", str(out), *map(str, args)])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def split_sweeps(offline_mnist, tmp_path_factory):
    """The same sweep stored three ways: each point's seeds in one trial, in one trial per seed, and
    both groupings in one folder (--merge)."""
    import shutil
    root = tmp_path_factory.mktemp("split")
    whole = _sweep_on(offline_mnist, root / "whole")
    split = _sweep_on(offline_mnist, root / "split", "--seeds-per-trial", "1")
    shutil.copytree(split, root / "both")
    _sweep_on(offline_mnist, root / "both", "--merge")
    return whole, split, root / "both"


def test_a_points_seeds_in_several_trials_are_one_point(split_sweeps):
    """fig5c.toml's seeds_per_trial had been reported per trial: 'swept … seeds: [0], [1]', twice the
    points, a '…-seeds-accuracy' plot, series 'rule.k=5, seeds=[0]', mean ± std over one trial's seeds."""
    whole, split, _ = (read_sweep(f) for f in split_sweeps)
    assert len(split.trials) == 2 and axes(split) == ["rule.k"] == axes(whole) and split.duplicates == []
    assert split.total == 2 and split.split_seeds and not whole.split_seeds
    for a, b in zip(sorted(whole.trials, key=lambda t: t.k), sorted(split.trials, key=lambda t: t.k)):
        # the seeds train bit-identically in either grouping: the same point, every seed, in seed order
        assert b.seeds == [0, 1] and b.params == {"rule.k": a.k, "seeds": [0, 1]} and len(b.keys) == 2
        assert b.accuracy == a.accuracy and b.train_config["seeds"] == [0, 1]
        for m, v in a.metrics.items():  # means over the seeds, the worst device's counts included
            if m != "seconds":
                assert b.metrics[m] == pytest.approx(v, rel=1e-12), m
        assert b.metrics["seconds"] > 0
    page, figs = build_report([str(split_sweeps[1])])
    assert [f.id.endswith("-split-rule-k-accuracy") for f in figs if f.id.endswith("-accuracy")] == [True]
    acc = next(f for f in figs if f.id.endswith("-accuracy"))
    assert [t.name for t in acc.traces] == ["ours, mean ± std"] and acc.traces[0].x == [5, 20]
    assert "seeds=[" not in page and "swept</th><td>rule.k: 5, 20</td>" in page
    assert "<th>points</th><td>2</td>" in page and "<th>seeds per point</th><td>2</td>" in page


def test_each_seeds_own_figures_are_read_only_for_a_point_split_over_trials(split_sweeps, monkeypatch):
    """Each seed's figures had been worked out for every stored trial, where only the trials of a
    point whose seeds are in several take them (merge_points)."""
    from ferristor.report import sweeps
    real, calls = sweeps._seed_metrics, []
    monkeypatch.setattr(sweeps, "_seed_metrics", lambda result, k: calls.append(k) or real(result, k))
    assert len(read_sweep(split_sweeps[0]).trials) == 2 and calls == []  # one trial per point
    assert len(read_sweep(split_sweeps[1]).trials) == 2 and sorted(calls) == [5, 5, 20, 20]  # two per point


def test_seconds_of_a_split_point_are_summed():
    from ferristor.report.sweeps import Trial, merge_points
    parts = [Trial(key=f"k{s}", params={"k": 5, "seeds": [s]}, train_config={}, accuracy=[80.0 + s],
                   metrics={"seconds": 2.0 + s, "memristor_ops_worst": 10.0 * (s + 1), "samples_per_replica": 600},
                   seeds=[s], identity="p") for s in (1, 0)]
    parts.append(Trial(key="k23", params={"k": 5, "seeds": [2, 3]}, train_config={}, accuracy=[82.0, 83.0],
                       metrics={"seconds": 5.0, "memristor_ops_worst": 40.0, "samples_per_replica": 600}, seeds=[2, 3], identity="p"))
    (point,), notes = merge_points(parts)
    assert notes == [] and point.seeds == [0, 1, 2, 3] and point.accuracy == [80.0, 81.0, 82.0, 83.0]
    assert point.metrics["seconds"] == 10.0 and point.metrics["samples_per_replica"] == 600
    # a mean over chips: a trial of two seeds weighs twice one of one (not a mean of the trials' means)
    assert point.metrics["memristor_ops_worst"] == pytest.approx((10 + 20 + 40 + 40) / 4)


def test_a_seed_stored_in_two_groupings_is_counted_once_and_named(split_sweeps):
    """Two folders' worth of groupings in one store (--merge of seeds 0-1 in one trial with [0], [1])
    must not count a seed twice: the point keeps each seed once and the page says so."""
    import sqlite3
    whole, both = read_sweep(split_sweeps[0]), read_sweep(split_sweeps[2])
    assert len(both.trials) == 2 and both.total == 2 and axes(both) == ["rule.k"]
    with sqlite3.connect(split_sweeps[2] / "sweep.sqlite") as db:  # the trials of both seeds, by k
        two = {json.loads(params)["rule.k"]: (key, json.loads(result)["timing"]["train_seconds"]) for key, params, result
               in db.execute("SELECT key, params, result FROM trials WHERE json_extract(params, '$.seeds') IS NULL")}
    for a, b in zip(sorted(whole.trials, key=lambda t: t.k), sorted(both.trials, key=lambda t: t.k)):
        assert b.seeds == [0, 1] and b.accuracy == a.accuracy and len(b.keys) == 3
        key, seconds = two[b.k]
        assert b.key == key and b.metrics["seconds"] == seconds  # the trial of both seeds, its time alone
    assert len(both.duplicates) == 2 and all("seeds 0, 1 of trial " in d and "the same numbers; counted once" in d
                                              for d in both.duplicates)
    page, _ = build_report([str(split_sweeps[2])])
    assert "seeds stored twice (counted once)" in page and "<th>points</th><td>2</td>" in page


def test_a_split_point_with_seeds_not_done_says_which(split_sweeps, tmp_path):
    import shutil
    import sqlite3
    folder = shutil.copytree(split_sweeps[1], tmp_path / "s")
    with sqlite3.connect(folder / "sweep.sqlite") as db:
        db.execute("UPDATE trials SET status = 'pending', result = NULL "
                   "WHERE params = ? ", (json.dumps({"rule.k": 20, "seeds": [1]}, separators=(",", ":")),))
        assert db.total_changes == 1
    sweep = read_sweep(folder)
    assert [(t.k, t.seeds, t.pending_seeds) for t in sorted(sweep.trials, key=lambda t: t.k)] == [(5, [0, 1], []), (20, [0], [1])]
    assert sweep.total == 2 and sweep.unfinished_points == 1 and axes(sweep) == ["rule.k"]
    page, _ = build_report([str(folder)])
    assert "<th>points</th><td>1 of 2 done; 1 more shown with the seeds done so far</td>" in page
    assert "<th>not done (left out)</th><td>rule.k=20, seeds=1: pending</td>" in page
    assert "Not finished: 1 of its 2 points are not done" in page


def test_trials_json_of_one_point_merge_by_seed(tmp_path):
    """The trials/ folder: each trial's figures are means over its seeds, weighed by how many."""
    base = {"figure": "fig5c", "setting": "mnist", "mode": "hm", "k": 10, "epoch_scale": 0.01,
            "train_config": {"rule": {"p": 0.2}, "batch": 1}}
    trials = [({**base, "seeds": seeds}, {"accuracy": acc, "k": 10, "seconds": 1.0, "samples_per_replica": 600,
                                         "memristor_ops_worst": w, "memristor_ops_per_device": w})
              for seeds, acc, w in (([0, 1, 2], [80.0, 81.0, 82.0], 9.0), ([3], [83.0], 13.0), ([3], [83.0], 13.0))]
    sweep = read_sweep(_write(tmp_path / "s", trials))
    (t,) = sweep.trials
    assert t.seeds == [0, 1, 2, 3] and t.accuracy == [80.0, 81.0, 82.0, 83.0] and t.params["seeds"] == [0, 1, 2, 3]
    assert t.metrics["memristor_ops_worst"] == 10.0 and t.metrics["seconds"] == 2.0
    assert sweep.duplicates == ["figure=fig5c, setting=mnist, mode=hm, k=10, epoch_scale=0.01: seed 3 of trial 0001 also in trial 0002 "
                                "(the same numbers; counted once, from 0001)"]


def test_a_null_accuracy_in_the_store_is_a_seed_shown_n_a_not_a_point_left_out(small_sweep, tmp_path):
    """`final_test_accuracy: [null, …]` in sweep.sqlite had left the trial out ("unsupported operand
    type(s) for *: 'int' and 'NoneType'"), and the sweep then looked complete without it."""
    import math
    key = _first_done(small_sweep)
    folder = _edited_store(small_sweep, tmp_path / "fig5cde", "UPDATE trials SET result = "
                           "json_set(result, '$.final_test_accuracy[0]', json('null')) WHERE key = ?", key)
    sweep = read_sweep(folder)
    assert sweep.skipped == [] and len(sweep.trials) == 3
    (t,) = [t for t in sweep.trials if t.key == key]
    assert math.isnan(t.accuracy[0]) and not math.isnan(t.accuracy[1])
    page, _ = build_report([str(folder)])
    assert "n/a–" in page


# --- a sweep not over k, and k zipped with another axis -------------------------------------------

@pytest.fixture(scope="module")
def lr_sweep(offline_mnist, tmp_path_factory):
    """`ferristor sweep --grid rule.lr=0.1,0.2 --seeds 0-1 --seeds-per-trial 1`: two points of two
    trials each, k fixed (the resolved config's rule.k only)."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    out = tmp_path_factory.mktemp("lr") / "swlr"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ferristor.data.load_dataset", lambda name, data_dir=None, **kw: offline_mnist)
        r = CliRunner().invoke(cli, ["sweep", "--set", "mode=hm", "--set", "epochs=0.1", "--grid", "rule.lr=0.1,0.2",
                                     "--seeds", "0-1", "--seeds-per-trial", "1", "--in-process", "--threads", "1",
                                     "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _lr_trial_edited(lr_sweep, dest, sql):
    """A copy of the lr sweep with ``sql`` run on the trial of rule.lr = 0.2, seed 1."""
    import shutil
    import sqlite3
    folder = shutil.copytree(lr_sweep, dest)
    with sqlite3.connect(folder / "sweep.sqlite") as db:
        db.execute(sql + " WHERE params = ?", (json.dumps({"rule.lr": 0.2, "seeds": [1]}, separators=(",", ":")),))
        assert db.total_changes == 1
    return folder


def test_an_interrupted_sweep_not_over_k_has_no_k_axis_and_counts_its_points(lr_sweep, tmp_path):
    """The result's k had been put among a done trial's own fields, where the trial not done has none:
    'k: 100 (planned: 100, –) (follows rule.lr)', '2 of 3 done', and the point of the trial not done
    shown complete. ferristor lifetime had said nothing of the seed still to train."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    folder = _lr_trial_edited(lr_sweep, tmp_path / "s", "UPDATE trials SET status = 'pending', result = NULL")
    sweep = read_sweep(folder)
    assert axes(sweep) == ["rule.lr"] and sweep.total == 2 and sweep.unfinished_points == 1
    assert all("k" not in t.params and t.k == 100 for t in sweep.trials)
    assert [(t.params["rule.lr"], t.seeds, t.pending_seeds) for t in sweep.trials] == [(0.1, [0, 1], []), (0.2, [0], [1])]
    page, _ = build_report([str(folder)])
    assert "<th>points</th><td>1 of 2 done; 1 more shown with the seeds done so far</td>" in page
    assert "<th>swept</th><td>rule.lr: 0.1, 0.2</td>" in page and "follows" not in page
    r = CliRunner().invoke(cli, ["lifetime", str(folder), "--rate", "1"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "  points: 1 of 2 done; 1 more shown with the seeds done so far" in lines
    assert "  not done (left out): rule.lr=0.2, seeds=1: pending" in lines
    assert any(line.startswith("  rule.lr=0.2 (seeds done so far: 0; not done: 1): memristor ") for line in lines), lines
    done = CliRunner().invoke(cli, ["lifetime", str(lr_sweep), "--rate", "1"]).output  # a finished sweep: nothing to say
    assert "points:" not in done and "left out" not in done


@pytest.mark.parametrize("sql", ["UPDATE trials SET result = '{not json'",  # the store cannot read the row
                                 "UPDATE trials SET result = json_set(result, '$.final_test_accuracy[0]', 5.0)"])  # report
def test_an_unreadable_trial_of_a_split_point_is_that_point_not_one_more(lr_sweep, tmp_path, sql):
    """An unreadable row of a point whose other seeds are read had counted as a point of its own: '2 of
    3 done' for a sweep of 2 points."""
    folder = _lr_trial_edited(lr_sweep, tmp_path / "s", sql)
    with pytest.warns(Warning, match="trials.result is not readable JSON") if "not json" in sql else _no_warning():
        sweep = read_sweep(folder)
        page, _ = build_report([str(folder)])
    assert sweep.total == 2 and len(sweep.skipped) == 1 and len(sweep.trials) == 2
    assert [(t.params["rule.lr"], t.seeds, len(t.left_out)) for t in sweep.trials] == [(0.1, [0, 1], 0), (0.2, [0], 1)]
    assert "<th>points</th><td>1 of 2 done; 1 more shown with the seeds done so far</td>" in page
    assert "unreadable points (left out)" in page


def test_a_damaged_rows_point_is_read_with_the_stores_one_connection(lr_sweep, tmp_path, monkeypatch):
    """A damaged row's point (its params and identity) had been read with a second connection to
    sweep.sqlite: the store's one reading keeps them, and the page still names the row."""
    import contextlib
    import sqlite3
    folder = _lr_trial_edited(lr_sweep, tmp_path / "s", "UPDATE trials SET config = ''")
    with contextlib.closing(sqlite3.connect(folder / "sweep.sqlite")) as db:
        key = db.execute("SELECT key FROM trials WHERE config = ''").fetchone()[0]
    connect, opened = sqlite3.connect, []
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: opened.append(a[0]) or connect(*a, **kw))
    with pytest.warns(Warning, match=f"trial {key}: trials.config is not readable JSON"):
        sweep = read_sweep(folder)
    assert len(opened) == 1
    assert sweep.total == 2 and sweep.skipped[0].startswith(f"{key} (trials.config ")
    assert [(t.params["rule.lr"], t.seeds, t.left_out) for t in sweep.trials] == [(0.1, [0, 1], []), (0.2, [0], [key])]
    with pytest.warns(Warning, match=f"trial {key}: "):
        page, _ = build_report([str(folder)])
    assert "<th>points</th><td>1 of 2 done; 1 more shown with the seeds done so far</td>" in page
    assert f"<th>unreadable points (left out)</th><td>{key} (trials.config is not readable JSON" in page


def _no_warning():
    import contextlib
    return contextlib.nullcontext()


def test_k_zipped_with_another_axis_is_never_the_restatement(tmp_path):
    """[[points]] pairing rule.lr with rule.k: k had been judged to 'follow rule.lr', so the sweep lost
    its Lifetime section and ferristor lifetime its k in every label."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    from ferristor.report.sweep_page import restated
    trials = [({"rule.lr": lr, "rule.k": k, "train_config": {"rule": {"p": 0.2, "k": k}, "batch": 1}},
               {"accuracy": [90.0], "k": k, "samples_per_replica": 600, "transfers": 600 // k,
                "memristor_ops_worst": 2.0 * (600 // k), "fecap_ops_worst": 300.0})
              for lr, k in ((0.1, 10), (0.2, 20), (0.3, 50))]
    folder = _write(tmp_path / "zip", trials)
    sweep = read_sweep(folder)
    assert axes(sweep) == ["rule.lr", "rule.k"] and restated(sweep, axes(sweep)) == {"rule.lr": "rule.k"}
    page, figs = build_report([str(folder)])
    assert any(f.id.endswith("-lifetime-plot") for f in figs) and "Lifetime against k" in page
    assert "rule.lr: 0.1, 0.2, 0.3 (follows rule.k)" in page
    # the caption says the lifetime as the run page does: per transfer, in steady on-line learning
    assert "steady on-line learning" in page and "its operations per transfer, one transfer every k samples" in page
    assert "the worst device&#x27;s operations per training sample" not in page
    r = CliRunner().invoke(cli, ["lifetime", str(folder), "--rate", "1"])
    assert r.exit_code == 0, r.output
    assert [line.split(":")[0] for line in r.output.splitlines()[1:]] == ["  rule.k=10", "  rule.k=20", "  rule.k=50"]
