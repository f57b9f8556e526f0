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
