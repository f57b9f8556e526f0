"""`ferristor report` and `ferristor lifetime`: files written, numbers printed, one-line errors."""
import json
import re

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_report_writes_one_self_contained_page_beside_the_run(small_run, tmp_path):
    import shutil
    run = shutil.copytree(small_run, tmp_path / "run")
    r = _invoke("report", run)
    assert r.exit_code == 0, r.output
    page = run / "report.html"
    assert r.output.strip() == f"report: {page}"
    html = page.read_text()
    from plotly.offline import get_plotlyjs
    library = get_plotlyjs().replace("</script", "<\\/script")
    assert html.count(library) == 1  # plotly.js inlined once; its own strings name web sites it never fetches here
    html = html.replace(library, "")
    # nothing to fetch: no external script, style, image or link target
    assert not re.search(r"""<(script|img|link|iframe)[^>]*\s(src|href)=""", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count("<script") == 2 + html.count('type="application/json"')  # plotly.js, the page script, plot data
    assert not list(run.glob(".report.html.*.part"))
    res = json.loads((run / "results.json").read_text())
    assert all(f"{100 * a:.2f}" in html for a in res["final_test_accuracy"])


def test_figures_for_papers(small_run, tmp_path):
    r = _invoke("report", small_run, "--out", tmp_path / "r.html", "--figures", tmp_path / "figs")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert "run-small-run-accuracy.svg" in names and "run-small-run-lifetime-plot.png" in names
    assert (tmp_path / "figs" / "run-small-run-accuracy.svg").read_text().lstrip().startswith("<?xml")


def test_lifetime_prints_the_measured_and_projected_k(small_run):
    from ferristor.report.lifetime import format_days, run_lifetime
    from ferristor.report.runs import read_run
    r = _invoke("lifetime", small_run, "--rate", "10", "--k", "10,40")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.output.splitlines() if re.match(r"^\s*\d", line)}
    assert sorted(rows) == ["10", "20*", "40"]
    measured = next(p for p in run_lifetime(read_run(small_run), ()) if p.measured)
    mem, fe = measured.days(10)
    assert format_days(mem) in rows["20*"] and format_days(fe) in rows["20*"]
    assert "1e+05" in r.output and "from the run's ledger config" in r.output


def test_lifetime_without_a_ledger_says_why_by_the_runs_mode(small_run, tmp_path):
    """A hybrid run whose results hold no ledger (an older or cut file) had been called floating-point."""
    res = json.loads((small_run / "results.json").read_text())
    assert res["config"]["mode"] != "fp"
    res.pop("ledger")
    for mode, why in ((res["config"]["mode"], "the results file records no ledger"),
                      ("fp", "a floating-point run programs no device")):
        (tmp_path / mode).mkdir()
        (tmp_path / mode / "results.json").write_text(json.dumps({**res, "config": {**res["config"], "mode": mode}}))
        r = _invoke("lifetime", tmp_path / mode, "--rate", "10")
        assert r.exit_code == 0, r.output
        assert r.output.splitlines()[-1] == f"  no projection: {why}"


def test_lifetime_of_a_sweep(small_sweep):
    r = _invoke("lifetime", small_sweep, "--rate", "5")
    assert r.exit_code == 0, r.output
    assert [line.split(",")[0].strip() for line in r.output.splitlines()[1:]] == ["k=5", "k=20", "k=100"]


@pytest.mark.parametrize("args, message", [
    (["report", "{tmp}/nope"], "PATH '{tmp}/nope': no such file or folder"),
    (["report", "{tmp}/empty"], "PATH '{tmp}/empty': holds no results.json"),
    (["report", "{tmp}/corrupt"], "cannot read it as JSON"),
    (["report", "{run}", "--rate", "-3"], "--rate='-3' is not allowed"),
    (["report", "{run}", "--out", "{tmp}"], "--out="),
    (["report"], "PATH: give at least one"),
    (["lifetime", "{run}", "--rate", "-1"], "--rate='-1' is not allowed"),
    (["lifetime", "{run}", "--rate", "fast"], "--rate='fast' is not allowed"),
    (["lifetime", "{run}"], "--rate is missing"),
    (["lifetime", "{tmp}/nope", "--rate", "1"], "RUN '{tmp}/nope': no such file or folder"),
    (["lifetime", "{run}", "--rate", "1", "--k", "0"], "--k='0' is not allowed"),
    # a transfer every half sample had been projected (exit 0) where train refuses such a k
    (["lifetime", "{run}", "--rate", "10", "--k", "0.5"], "--k='0.5' is not allowed: expected comma-separated transfer "
                                                         "periods, each a whole number of samples ≥ 1"),
    (["lifetime", "{run}", "--rate", "10", "--k", "1,2.5"], "--k='1,2.5' is not allowed"),
    (["report", "{run}", "--k", "0.5", "--out", "{tmp}/r.html"], "--k='0.5' is not allowed"),
])
def test_bad_input_is_one_line_and_exit_2(small_run, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "results.json").write_text("{")
    fill = lambda s: s.format(tmp=tmp_path, run=small_run)  # noqa: E731
    r = _invoke(*map(fill, args))
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("error: ") and fill(message) in r.output, r.output


@pytest.mark.parametrize("field, value, said", [
    ("config.rule", None, "'config.rule' is null, expected an object"),
    ("seeds", 3, "'seeds' is 3, expected a list or null"),
    ("samples_per_replica", "many", "'samples_per_replica' is \"many\", expected a whole number ≥ 0 or null"),
])
@pytest.mark.parametrize("command", [["report"], ["lifetime", "--rate", "10"]])
def test_a_hand_edited_results_file_is_one_line_and_exit_2(small_run, tmp_path, field, value, said, command):
    """These had been 'unexpected AttributeError/TypeError/ValueError … a bug' with exit 1."""
    res = json.loads((small_run / "results.json").read_text())
    *parents, last = field.split(".")
    target = res
    for p in parents:
        target = target[p]
    target[last] = value
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(res))
    r = _invoke(command[0], tmp_path / "run", *command[1:])
    assert r.exit_code == 2, r.output
    assert r.output == f"error: {tmp_path / 'run' / 'results.json'}: {said}\n"


def test_a_folder_with_a_bad_and_an_unfinished_run_still_makes_the_page(small_run, tmp_path):
    import shutil
    runs = tmp_path / "runs"
    shutil.copytree(small_run, runs / "good")
    (runs / "bad").mkdir()
    (runs / "bad" / "results.json").write_text("{")
    (runs / "going").mkdir()
    (runs / "going" / ".lock").touch()
    for command in (["report", runs, "--out", tmp_path / "r.html"], ["lifetime", runs, "--rate", "10"]):
        r = _invoke(*command)
        assert r.exit_code == 0, r.output
        bad, going = r.stderr.splitlines()
        assert bad.startswith(f"warning: skipped: {runs / 'bad' / 'results.json'}: cannot read it as JSON (")
        assert going == f"warning: skipped: {runs / 'going'}: unfinished (no results.json)"
    assert "run good: " in r.stdout


@pytest.mark.parametrize("command", [["report"], ["lifetime", "--rate", "10"]])
def test_a_fig6_folder_is_named_one_line_and_exit_2(tmp_path, command):
    out = tmp_path / "fig6"
    (out / "pairs").mkdir(parents=True)
    (out / "backbones").mkdir()
    for f in ("fig6.json", "fig6.txt", "fig6.png", "pairs/mnist-to-fashion-mnist.json"):
        (out / f).write_text("{}")
    r = _invoke(command[0], out, *command[1:])
    assert r.exit_code == 2, r.output
    arg = "PATH" if command[0] == "report" else "RUN"
    assert r.output.count("\n") == 1 and r.output.startswith(
        f"error: {arg} '{out}': a Fig. 6 transfer-learning output (ferristor fig6): its figure and table are fig6.png "
        f"and fig6.txt; {command[0]} reads training runs"), r.output


def test_lifetime_of_one_chip_says_chip(small_run, tmp_path):
    res = json.loads((small_run / "results.json").read_text())
    res["seeds"], res["final_test_accuracy"], res["ledger"] = res["seeds"][:1], res["final_test_accuracy"][:1], res["ledger"][:1]
    for h in res["history"]:
        h["test_accuracy"] = h["test_accuracy"][:1]
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "results.json").write_text(json.dumps(res))
    r = _invoke("lifetime", tmp_path / "one", "--rate", "10")
    assert r.exit_code == 0, r.output
    assert f", 1 chip × {res['samples_per_replica']:,} samples\n" in r.output.splitlines(keepends=True)[0]


def test_a_dashed_line_draws_without_matplotlibs_warning():
    """A dashed line with error bars made matplotlib warn 'linestyle is redundantly defined' (fmt '-' and
    ls '--'), printed twice under `report --figures`."""
    import warnings

    from ferristor.report.figures import Figure, Trace
    from ferristor.report.static import draw
    fig = Figure("f", "t", "x", "y", traces=[Trace("a", [1, 2], [0.5, 0.6], error=[0.1, 0.1], dash=True),
                                             Trace("b", [1, 2], [0.4, 0.5]), Trace("c", [1, 2], [0.3, 0.2], kind="markers")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mfig = draw(fig)
    assert [c.lines[0].get_linestyle() for c in mfig.axes[0].containers] == ["--", "-", "None"]


def test_lifetime_rows_line_up_and_a_k_written_as_a_float_is_taken(small_run):
    """The measured row's star had pushed its k one column left of the others ('100*' over '1000')."""
    r = _invoke("lifetime", small_run, "--rate", "10", "--k", "1,1e3,5.0")
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines() if re.match(r"^\s*\d", line)]
    assert [row.split()[0] for row in rows] == ["1", "5", "20*", "1000"]
    ends = {row.index(row.split()[0]) + len(row.split()[0].rstrip("*")) for row in rows}
    assert len(ends) == 1, rows  # every k's last digit in one column


def test_lifetime_says_one_operation_per_cycle_in_the_singular(small_run, tmp_path):
    res = json.loads((small_run / "results.json").read_text())
    res["config"]["ledger"]["ops_per_cycle"] = 1
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "results.json").write_text(json.dumps(res))
    r = _invoke("lifetime", tmp_path / "one", "--rate", "10")
    assert r.exit_code == 0, r.output
    assert "cycles (1 operation each)" in r.output
    assert "cycles (2 operations each)" in _invoke("lifetime", small_run, "--rate", "10").output


def test_lifetime_of_a_sweep_refuses_k_it_would_not_use(small_sweep, small_run, tmp_path):
    """--k on a sweep folder had been ignored without a word: a sweep's points are measured at their own k."""
    r = _invoke("lifetime", small_sweep, "--rate", "10", "--k", "5")
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("error: --k='5': a sweep's lifetimes are measured at "
                                                             "each point's own k"), r.output
    # a folder holding a run and a sweep: --k projects the run, and the sweep's line says it does not apply
    import shutil
    shutil.copytree(small_run, tmp_path / "both" / "run")
    shutil.copytree(small_sweep, tmp_path / "both" / "sweep")
    r = _invoke("lifetime", tmp_path / "both", "--rate", "10", "--k", "5")
    assert r.exit_code == 0, r.output
    assert "; --k does not apply: each point at its own, measured k" in r.output
    assert re.search(r"^\s*5\s", r.output, re.M)


def test_lifetime_of_a_sweep_shows_values_readably_and_an_axis_that_restates_another_once(tmp_path):
    """reproduce fig5f's points had been printed 'options={'rounding': 'nearest'}' (Python's repr) after
    their mode, which that option only restates."""
    (tmp_path / "f" / "trials").mkdir(parents=True)
    for i, mode in enumerate(("fp", "hm", "hm-var")):
        result = {"accuracy": [80.0, 81.0], "k": 100, "seconds": 1.0, "samples_per_replica": 600}
        if mode != "fp":
            result.update(fecap_ops_per_device=264.0, fecap_ops_worst=300.0, memristor_ops_per_device=12.0,
                          memristor_ops_worst=12.0, energy_fecap_nJ=0.0264, energy_memristor_nJ=0.012)
        config = {"figure": "fig5f", "setting": "mnist-online", "mode": mode, "k": 100, "seeds": [0, 1],
                  "options": {"rounding": "nearest"} if mode != "fp" else None, "network": [784, 100, 10],
                  "train_config": {"rule": {"p": 0.2}, "batch": 1}}
        (tmp_path / "f" / "trials" / f"{i}.json").write_text(json.dumps({"key": str(i), "config": config, "result": result}))
    r = _invoke("lifetime", tmp_path / "f", "--rate", "10")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == [f"  setting=mnist-online, mode={m}, k=100, network=784, 100, 10"
                                                      for m in ("fp", "hm", "hm-var")]
    assert "{" not in r.output and "'" not in r.output and "options" not in r.output


def test_lifetime_of_a_run_says_what_a_projection_takes(small_run):
    out = _invoke("lifetime", small_run, "--rate", "10").output
    assert "memristor writes per transfer, one every k samples" in out and "∝" not in out
