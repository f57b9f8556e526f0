"""Lifetime projection: days from the worst device's write rate and the run's own rated endurance."""
import json
import math

import pytest

from ferristor.errors import ConfigError
from ferristor.report.lifetime import check_rate, format_days, run_lifetime, trial_lifetime
from ferristor.report.runs import read_run
from ferristor.report.sweeps import trial_from_record


def _run(small_run, tmp_path, **ledger):
    res = json.loads((small_run / "results.json").read_text())
    res["config"]["ledger"].update(ledger)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "results.json").write_text(json.dumps(res))
    return read_run(tmp_path), res


def test_measured_k_uses_the_worst_chip_and_the_configs_endurance(small_run, tmp_path):
    run, res = _run(small_run, tmp_path)
    n, led = res["samples_per_replica"], res["config"]["ledger"]
    mem = max(r["network"]["memristor_ops"]["worst"] for r in res["ledger"])
    fe = max(r["network"]["fecap_ops"]["worst"] for r in res["ledger"])
    (p,) = [p for p in run_lifetime(run, ks=()) if p.measured]
    assert p.k == res["config"]["rule"]["k"] == 20
    mem_budget = led["memristor_endurance_cycles"] * led["ops_per_cycle"] - led["memristor_ops_per_transfer"]
    fe_budget = led["fecap_endurance_cycles"] * led["ops_per_cycle"] - led["fecap_ops_initial_write"] - led["fecap_ops_per_transfer"]
    assert p.days(10) == pytest.approx((mem_budget / (mem / n * 10) / 86400, fe_budget / (fe / n * 10) / 86400))
    assert p.days(20)[0] == pytest.approx(p.days(10)[0] / 2)


def test_rated_endurance_comes_from_the_run_not_from_constants(small_run, tmp_path):
    base, _ = _run(small_run, tmp_path / "a")
    tougher, _ = _run(small_run, tmp_path / "b", memristor_endurance_cycles=1e6, ops_per_cycle=1)
    a = next(p for p in run_lifetime(base, ()) if p.measured)
    b = next(p for p in run_lifetime(tougher, ()) if p.measured)
    assert b.memristor_days_at_1 == pytest.approx(a.memristor_days_at_1 * (1e6 * 1 - 2) / (1e5 * 2 - 2))


def test_projection_over_k(small_run, tmp_path):
    run, res = _run(small_run, tmp_path)
    pts = {p.k: p for p in run_lifetime(run, ks=(10, 40))}
    assert sorted(pts) == [10, 20, 40] and not pts[10].measured and not pts[40].measured
    assert pts[10].memristor_ops_per_sample == pytest.approx(2 * pts[20].memristor_ops_per_sample)
    # FeCAP: the worst cell's update writes (k-free) plus 4 operations per transfer, one transfer per k samples
    updates = pts[20].fecap_ops_per_sample - 4 * max(run.network.transfers) / run.samples_per_replica
    assert pts[40].fecap_ops_per_sample == pytest.approx(updates + 4 / 40)
    assert pts[10].memristor_days_at_1 < pts[20].memristor_days_at_1 < pts[40].memristor_days_at_1


def test_fp_runs_and_unwritten_devices(small_run, tmp_path):
    run, _ = _run(small_run, tmp_path)
    run.network = None
    assert run_lifetime(run) == []
    t = trial_from_record({"config": {"k": 10}, "result": {"accuracy": [90.0], "k": 10, "samples_per_replica": 100,
                                                           "memristor_ops_worst": 0, "fecap_ops_worst": 50}}, "x")
    p = trial_lifetime(t)
    assert math.isinf(p.memristor_days_at_1) and format_days(p.days(5)[0]) == "never"
    assert p.fecap_days_at_1 == pytest.approx((2e7 - 5) / 0.5 / 86400)  # LedgerConfig's defaults when a trial has no config


@pytest.mark.parametrize("bad", ["-1", "0", "nan", "inf", "abc", None])
def test_bad_rates_are_refused(bad):
    with pytest.raises(ConfigError, match="--rate"):
        check_rate(bad)


def test_day_formats():
    assert format_days(0.1234) == "0.123 d" and format_days(12.4) == "12 d" and format_days(730.5) == "730 d (2.0 y)"
    # a device barely written had read '4,000,000,000,000 d (10,951,403,148.5 y)', or 300 digits
    assert format_days(4e12) == "4e+12 d (1.1e+10 y)" and format_days(1e300) == "1e+300 d (2.74e+297 y)"
    assert format_days(9.9e6) == "9,900,000 d (27,104.7 y)"


def test_a_run_that_ends_between_transfers_is_not_optimistic(small_run, tmp_path):
    # 310 samples at k = 20 hold 15 transfers, as the engine schedules them: operations / samples
    # (30 / 310) had put the memristor at 1.935 operations a sample at k = 1, where every sample is a transfer (2)
    run, res = _run(small_run, tmp_path)
    res["samples_per_replica"] = 310
    (tmp_path / "results.json").write_text(json.dumps(res))
    run = read_run(tmp_path)
    assert max(run.network.transfers) == 310 // 20
    per_transfer = max(m / t for m, t in zip(run.network.memristor_worst, run.network.transfers))
    pts = {p.k: p for p in run_lifetime(run, ks=(1, 100))}
    assert per_transfer == 2 and pts[1].memristor_ops_per_sample == 2
    assert pts[20].memristor_ops_per_sample == pytest.approx(2 / 20)  # measured k too: a transfer every 20 samples
    assert pts[100].memristor_ops_per_sample == pytest.approx(2 / 100)
    fe_updates = (max(run.network.fecap_worst) - 4 * 15) / 310
    assert pts[20].fecap_ops_per_sample == pytest.approx(fe_updates + 4 / 20)


def test_a_sweep_point_counts_its_transfers_not_its_samples(small_sweep):
    from ferristor.report.sweeps import read_sweep
    from ferristor.sweeps.store import open_store
    store = open_store(small_sweep, readonly=True)
    results = {t["key"]: t["result"] for t in store.trials("done")}
    store.close()
    for t in read_sweep(small_sweep).trials:
        assert t.metrics["transfers"] == results[t.key]["ledger"][0]["network"]["transfers"]
    # 1,800 samples at k = 500: 3 transfers of 2 operations, 2 / 500 a sample (6 / 1,800 had been optimistic)
    for stored in ({"transfers": 3}, {}):  # a trials/ point without them: one every k samples
        t = trial_from_record({"config": {"k": 500}, "result": {"accuracy": [90.0], "k": 500, "samples_per_replica": 1800,
                                                                "memristor_ops_worst": 6, "fecap_ops_worst": 400, **stored}}, "x")
        p = trial_lifetime(t)
        assert p.memristor_ops_per_sample == pytest.approx(2 / 500)
        assert p.fecap_ops_per_sample == pytest.approx((400 - 3 * 4) / 1800 + 4 / 500)


def test_a_run_with_fewer_samples_than_k_is_projected_at_the_rated_programming(small_run, tmp_path):
    run, res = _run(small_run, tmp_path)
    for r in res["ledger"]:
        r["network"]["transfers"], r["network"]["memristor_ops"]["worst"] = 0, 0
    (tmp_path / "results.json").write_text(json.dumps(res))
    pts = {p.k: p for p in run_lifetime(read_run(tmp_path), ks=(1,))}
    assert pts[1].memristor_ops_per_sample == 2 and math.isfinite(pts[1].memristor_days_at_1)


def test_a_batch_larger_than_k_transfers_once_per_step(small_run, tmp_path):
    # train --k 5 --batch 10: HybridSGD makes at most one transfer per step, so 600 samples hold 60
    # transfers (one every 10 samples, not every 5): the measured k = 5 had shown twice the memristor's
    # operations per sample, half its lifetime, of what the run wrote
    run, res = _run(small_run, tmp_path)
    run.config = {**run.config, "batch": 10, "rule": {**run.config["rule"], "k": 5}}
    per_transfer = max(m / t for m, t in zip(run.network.memristor_worst, run.network.transfers))
    pts = {p.k: p for p in run_lifetime(run, ks=(1, 10, 20))}
    assert pts[5].measured and pts[5].memristor_ops_per_sample == pytest.approx(per_transfer / 10)
    assert pts[1].memristor_ops_per_sample == pts[5].memristor_ops_per_sample == pts[10].memristor_ops_per_sample
    assert pts[20].memristor_ops_per_sample == pytest.approx(per_transfer / 20)
    # k counted in updates: k steps of a batch each
    run.config = {**run.config, "rule": {**run.config["rule"], "k_unit": "updates"}}
    assert {p.k: p for p in run_lifetime(run, ks=())}[5].memristor_ops_per_sample == pytest.approx(per_transfer / 50)
    # a sweep point that does not record its transfers: one per step of 10 samples, as the engine
    t = trial_from_record({"config": {"k": 5, "train_config": {"batch": 10, "rule": {"k": 5}}},
                           "result": {"accuracy": [90.0], "k": 5, "samples_per_replica": 600,
                                      "memristor_ops_worst": 120, "fecap_ops_worst": 400}}, "x")
    p = trial_lifetime(t)
    assert p.memristor_ops_per_sample == pytest.approx(0.2)
    assert p.fecap_ops_per_sample == pytest.approx((400 - 60 * 4) / 600 + 4 / 10)


def test_a_run_that_skips_unchanged_levels_projects_bounds(small_run, tmp_path):
    # --skip-unchanged-transfers: a memristor is written only when its level changed since the last
    # transfer, so its writes per transfer shrink with k; taking the run's (k = 20) to k = 1 had
    # shown a lifetime ~k0 times too short as if it were an estimate
    from ferristor.report.lifetime import lifetime_table
    run, _ = _run(small_run, tmp_path / "skip", transfer_writes_unchanged=False)
    pts = {p.k: p for p in run_lifetime(run, ks=(1, 10, 40))}
    assert [pts[k].bound for k in (1, 10, 20, 40)] == ["at least", "at least", "", "at most"]
    text = lifetime_table(list(pts.values()), 10)
    rows = {line.split()[0]: line for line in text.splitlines()[1:5]}
    assert "≥ " + format_days(pts[1].days(10)[0]) in rows["1"] and "≤ " + format_days(pts[40].days(10)[0]) in rows["40"]
    assert "≥" not in rows["20*"] and "≤" not in rows["20*"]
    assert "transfer_writes_unchanged = false" in text.splitlines()[-1]
    # every transfer writes every pair: the projection is the estimate it was, no mark, no note
    plain, _ = _run(small_run, tmp_path / "plain")
    pts = run_lifetime(plain, ks=(1, 10, 40))
    assert not any(p.bound for p in pts) and "≥" not in lifetime_table(pts, 10)
    # no transfer in the run: every pair written at every transfer was taken, the most a transfer writes
    run.network.transfers = [0 for _ in run.network.transfers]
    run.network.memristor_worst = [0 for _ in run.network.memristor_worst]
    assert {p.k: p.bound for p in run_lifetime(run, ks=(1, 40))} == {1: "at least", 20: "", 40: "at least"}


def test_the_run_page_marks_bounds_and_keeps_the_mark_when_the_rate_changes(small_run, tmp_path):
    # the HTML page showed a skip-unchanged run's projections as estimates, as `lifetime` did before
    from ferristor.report import build_report
    _run(small_run, tmp_path / "skip", transfer_writes_unchanged=False)
    page, _ = build_report([str(tmp_path / "skip")])
    assert "(projected, a bound: at least)" in page and "(projected, a bound: at most)" in page
    assert 'data-mark="≥ "' in page and 'data-mark="≤ "' in page  # the rate box's script re-adds it
    assert "transfer_writes_unchanged = false" in page
    _run(small_run, tmp_path / "plain")
    plain, _ = build_report([str(tmp_path / "plain")])
    assert "a bound" not in plain and 'data-mark="' not in plain
