"""Acceptance: the reports of a small run and a small sweep, opened in headless Debian Chromium,
render with no console error and no network request, and show the plots and the runs' numbers.
Screenshots are kept under tests/artifacts/."""
import json
import math

import pytest

from click.testing import CliRunner

from ferristor.cli.main import cli


def _report(tmp_path, *args):
    out = tmp_path / "report.html"
    r = CliRunner().invoke(cli, ["report", *map(str, args), "--out", str(out), "--rate", "10"])
    assert r.exit_code == 0, r.output
    return out


def _rendered(page, shot, expected_plots):
    assert page.errors == [], f"console errors (screenshot: {shot}): {page.errors}"
    # self-contained: the page itself is the only file, and nothing goes to the network
    assert [u for u in page.requests if u.startswith("file:")] == [page.driver.current_url], page.requests
    assert not [u for u in page.requests if not u.startswith(("file:", "data:", "blob:", "chrome:"))], page.requests
    ids = page.js("return Array.from(document.querySelectorAll('.plotly-target')).map(function (e) { return e.id; })")
    assert set(expected_plots) <= set(ids), ids
    assert page.js("return Number(document.body.getAttribute('data-plots-drawn'))") == len(ids)
    for fid in ids:  # plotly drew each one: an SVG with one trace group per trace
        drawn = page.js("var e = document.getElementById(arguments[0]); return [e.querySelectorAll('.main-svg').length, "
                        "e.data ? e.data.length : 0, e.querySelectorAll('.trace').length];", fid)
        assert drawn[0] > 0 and drawn[1] > 0 and drawn[2] >= drawn[1], (fid, drawn)
    return ids


def _days(budget_ops, ops, samples, rate):
    return budget_ops / (ops / samples * rate) / 86400


@pytest.mark.slow
def test_run_report_in_chromium(small_run, browser, tmp_path):
    res = json.loads((small_run / "results.json").read_text())
    page = browser(_report(tmp_path, small_run))
    shot = page.screenshot("report-run.png")
    sid = "run-small-run"
    _rendered(page, shot, [f"{sid}-accuracy", f"{sid}-writes-memristor", f"{sid}-writes-fecap", f"{sid}-lifetime-plot"])

    # accuracy per evaluation: every seed's value in the table, the mean in the plot
    table = page.text(f"#{sid}-accuracy-table")
    for h in res["history"]:
        assert all(f"{100 * a:.2f}" in table for a in h["test_accuracy"]), (h, table)
    mean_y = page.js(f"var d = document.getElementById('{sid}-accuracy').data; return d[d.length - 1].y;")
    assert mean_y == pytest.approx([100 * sum(h["test_accuracy"]) / 2 for h in res["history"]])
    final = [100 * a for a in res["final_test_accuracy"]]
    assert f"{sum(final) / 2:.2f} ± {abs(final[0] - final[1]) / math.sqrt(2):.2f}" in page.text(f"#{sid}-summary")

    # ledger: one row per layer and the network's, with the run's counts
    rows = page.js(f"return Array.from(document.querySelectorAll('#{sid}-ledger tbody tr')).map(function (r) {{ return r.innerText; }})")
    assert len(rows) == len(res["ledger"][0]["layers"]) + 1 and rows[-1].startswith("network")
    net = res["ledger"][0]["network"]
    assert f"{net['weights']:,}" in rows[-1] and f"{int(net['memristor_ops']['worst']):,}" in rows[-1]

    # lifetime: the measured k, recomputed here from results.json, then rescaled by the rate box
    led, n = res["config"]["ledger"], res["samples_per_replica"]
    budget = led["memristor_endurance_cycles"] * led["ops_per_cycle"] - led["memristor_ops_per_transfer"]
    worst = max(r["network"]["memristor_ops"]["worst"] for r in res["ledger"])
    measured = page.js(f"return Array.from(document.querySelectorAll('#{sid}-lifetime tbody tr')).map(function (r) {{ return r.innerText; }})"
                       ".filter(function (t) { return t.indexOf('measured') >= 0; })")
    assert len(measured) == 1 and measured[0].startswith("20")
    assert f"{_days(budget, worst, n, 10):.3g} d" in measured[0], measured
    page.js("var i = document.getElementById('rate'); i.value = '20'; i.dispatchEvent(new Event('input'));")
    cell = page.js(f"return document.querySelector('#{sid}-lifetime tbody tr.measured td:nth-child(3)').innerText")
    assert cell == f"{_days(budget, worst, n, 20):.3g} d"
    assert page.errors == [] and page.driver.get_log("browser") == []


@pytest.mark.slow
def test_sweep_report_in_chromium(small_sweep, browser, tmp_path):
    from ferristor.report.sweeps import read_sweep
    trials = [{"result": {"accuracy": t.accuracy, "k": t.params["k"], **t.metrics}} for t in read_sweep(small_sweep).trials]
    assert len(trials) == 3
    page = browser(_report(tmp_path, small_sweep))
    shot = page.screenshot("report-sweep.png")
    sid = "sweep-reproduce-fig5cde"
    _rendered(page, shot, [f"{sid}-k-accuracy", f"{sid}-k-ops", f"{sid}-k-energy", f"{sid}-lifetime-plot"])

    points = page.text(f"#{sid}-trials")
    for t in trials:
        acc = t["result"]["accuracy"]
        assert f"{sum(acc) / len(acc):.2f} ±" in points
        assert f"{int(t['result']['memristor_ops_per_device']):,} / {int(t['result']['memristor_ops_worst']):,}" in points
    assert "96.7" in points  # the paper's Fig. 5c value beside the k = 100 point
    xs = page.js(f"return document.getElementById('{sid}-k-accuracy').data[0].x")
    assert xs == sorted(t["result"]["k"] for t in trials)
    assert page.js(f"return document.getElementById('{sid}-k-accuracy').layout.xaxis.type") == "log"


@pytest.mark.slow
def test_a_lifetime_not_recorded_stays_n_a_in_chromium(small_run, browser, tmp_path):
    """One chip's worst memristor count is null (a strict writer's nan): its lifetimes are n/a, and
    stay n/a when the rate box rescales the page (the script had no n/a: 'nan' read as 'never')."""
    res = json.loads((small_run / "results.json").read_text())
    res["ledger"][1]["network"]["memristor_ops"]["worst"] = None
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(res))
    page = browser(_report(tmp_path, tmp_path / "run"))
    _rendered(page, page.screenshot("report-run-not-recorded.png"), ["run-run-lifetime-plot"])
    cells = "return Array.from(document.querySelectorAll('#run-run-lifetime tbody tr.measured td')).map(function (c) { return c.innerText; })"
    for rate in ("10", "20"):
        page.js(f"var i = document.getElementById('rate'); i.value = '{rate}'; i.dispatchEvent(new Event('input'));")
        _, mem_ops, mem_days, fe_ops, fe_days = page.js(cells)
        assert (mem_ops, mem_days) == ("n/a", "n/a") and fe_days.endswith(" d") and fe_days != "n/a", (rate, fe_days)
    assert page.errors == [] and page.driver.get_log("browser") == []


@pytest.mark.slow
def test_an_invalid_rate_is_shown_invalid_and_the_tables_stay_at_the_last_valid_one(small_run, browser, tmp_path):
    """0, −5 or an empty box had been taken silently: the box showed −5 beside lifetimes at the previous rate."""
    page = browser(_report(tmp_path, small_run))
    sid = "run-small-run"
    cell = f"return document.querySelector('#{sid}-lifetime tbody tr.measured td:nth-child(3)').innerText"
    state = ("var i = document.getElementById('rate'); return [i.classList.contains('invalid'), i.getAttribute('aria-invalid'), "
             "document.querySelector('.rate-error').innerText, getComputedStyle(i).borderTopColor];")
    at_10 = page.js(cell)
    for bad in ("0", "-5", ""):
        page.js(f"var i = document.getElementById('rate'); i.value = '{bad}'; i.dispatchEvent(new Event('input'));")
        invalid, aria, message, border = page.js(state)
        assert invalid and aria == "true" and border == "rgb(176, 0, 32)", (bad, border)
        assert message == "needs a number > 0: lifetimes are still at 10 samples per second", (bad, message)
        assert page.js(cell) == at_10
    page.js("var i = document.getElementById('rate'); i.value = '20'; i.dispatchEvent(new Event('input'));")
    invalid, aria, message, _ = page.js(state)
    assert not invalid and aria == "false" and message == "" and page.js(cell) != at_10
    page.js("var i = document.getElementById('rate'); i.value = '-1'; i.dispatchEvent(new Event('input'));")
    assert page.js(state)[2].endswith("still at 20 samples per second")
    # a rate so low that the lifetime is huge: 3 significant figures, as format_days writes it
    from ferristor.report.lifetime import format_days
    days_at_1 = float(page.js(cell.replace(".innerText", ".getAttribute('data-days-at-1')")))
    page.js("var i = document.getElementById('rate'); i.value = '1e-9'; i.dispatchEvent(new Event('input'));")
    assert page.js(cell) == format_days(days_at_1 / 1e-9) and "e+" in page.js(cell)
    assert page.errors == [] and page.driver.get_log("browser") == []
