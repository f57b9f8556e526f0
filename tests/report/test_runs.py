"""Reading runs: the adapter's numbers, tolerance of old and new fields, and what PATHs mean."""
import html
import json
import math
import re
import shutil
import warnings

import pytest

from ferristor.errors import DataError, FerristorWarning
from ferristor.report import build_report
from ferristor.report.inputs import resolve
from ferristor.report.runs import FIELDS, read_run


def _copy(run, dest, edit=None):
    dest.mkdir(parents=True)
    res = json.loads((run / "results.json").read_text())
    if edit:
        edit(res)
    (dest / "results.json").write_text(json.dumps(res))
    return dest


def test_the_adapter_reads_the_runs_numbers(small_run):
    res = json.loads((small_run / "results.json").read_text())
    run = read_run(small_run)
    assert run.accuracy == [100 * a for a in res["final_test_accuracy"]]
    assert [h.accuracy for h in run.history] == [[100 * a for a in h["test_accuracy"]] for h in res["history"]]
    assert len(run.layers) == len(res["ledger"][0]["layers"]) == 3
    assert run.network.memristor_worst == [r["network"]["memristor_ops"]["worst"] for r in res["ledger"]]
    assert run.endurance.memristor_cycles == res["config"]["ledger"]["memristor_endurance_cycles"]
    # fields the page shows as provenance: the dataset's name and fingerprint
    assert run.samples_per_replica == res["samples_per_replica"] and set(run.extra) == {"dataset"}


def test_an_old_minimal_file_still_makes_a_page(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps(
        {"config": {"dataset": "mnist", "mode": "fp", "rule": {"k": 100, "p": 0.2, "lr": 0.1}}, "final_test_accuracy": [0.9, 0.92]}))
    page, figs = build_report([str(tmp_path / "old")])
    assert "91.00 ± 1.41" in page and "records no evaluation history" in page and "programs no device" in page
    assert "<th>code version</th><td>not recorded in results.json</td>" in page
    assert figs == []


def test_new_engine_fields_are_shown_and_used(small_run, tmp_path):
    def edit(res):
        res["code_version"] = "abc1234-dirty"
        res["dataset_fingerprint"] = {"sha256": "f00d"}
        for rep in res["ledger"]:
            for layer in rep["layers"]:
                layer["histogram"] = {"memristor_ops": {"edges": [0, 10, 20, 30, 40], "counts": [0, 0, 0, layer["weights"]]},
                                      "fecap_ops": {"edges": [0, 100, 200, 300], "counts": [1, layer["weights"] - 2, 1]}}
    run = _copy(small_run, tmp_path / "new", edit)
    page, figs = build_report([str(run)])
    assert "<th>code version</th><td>abc1234-dirty</td>" in page
    assert "<th>dataset_fingerprint.sha256</th><td>f00d</td>" in page
    writes = next(f for f in figs if f.id.endswith("-writes-memristor"))
    assert "histogram" in writes.title
    mem = next(t for t in writes.traces if t.name == "memristor, layer 1")
    assert mem.x == [5, 15, 25, 35] and mem.y == [0, 0, 0, 2 * 156_800]  # two chips added up


def test_several_runs_are_compared(small_run, tmp_path):
    a = _copy(small_run, tmp_path / "a" / "run")
    b = _copy(small_run, tmp_path / "b" / "run", lambda r: r["config"]["rule"].update(k=50))
    runs, sweeps = resolve([str(a), str(b)])
    assert [r.name for r in runs] == ["a/run", "b/run"] and sweeps == []
    page, _ = build_report([str(a), str(b)])
    assert 'id="runs-compared-table"' in page and "<th>rule.k</th>" in page
    assert [r.name for r in resolve([str(tmp_path / "a")])[0]] == ["run"]  # a folder of runs stands for them


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file or folder"),
    (lambda p: p.mkdir(), "holds no results.json and no sweep"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text('{"config": {')), "cannot read it as JSON"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text('{"hello": 1}')), "'config' is missing, expected an object"),
    (lambda p: (p.mkdir(), (p / "results.json").write_text('[1]')), r"not a ferristor results file: it holds \[1\]"),
    (lambda p: (p.mkdir(), (p / "checkpoint.pt").write_bytes(b"")), r"unfinished \(no results.json\)"),
])
def test_bad_paths_are_clear_errors(tmp_path, make, message):
    make(tmp_path / "x")
    with pytest.raises(DataError, match=message):
        resolve([str(tmp_path / "x")], "PATH")


def test_a_run_without_its_file_is_named(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "r")
    (run / "results.json").unlink()
    with pytest.raises(DataError, match="no results.json"):
        read_run(run)


def _set(path, value):
    """An edit of results.json setting the field at ``path`` (keys and list indices) to ``value``."""
    def edit(res):
        *parents, last = path
        target = res
        for p in parents:
            target = target[p]
        target[last] = value
    return edit


@pytest.mark.parametrize("path, value, field, expected", [
    (("config", "rule"), None, "config.rule", "is null, expected an object"),
    (("config", "network"), [784, 10], "config.network", "expected an object"),
    (("config", "epochs"), "ten", "config.epochs", 'is "ten", expected a number'),
    (("config", "dataset"), ["mnist"], "config.dataset", "expected text"),
    (("config", "rule", "k"), "100", "config.rule.k", "expected a number > 0"),
    (("config", "ledger", "memristor_endurance_cycles"), "1e5", "config.ledger.memristor_endurance_cycles", "expected a number ≥ 0"),
    (("config", "ledger", "transfer_writes_unchanged"), "false", "config.ledger.transfer_writes_unchanged", "expected true or false"),
    (("seeds",), 3, "seeds", "is 3, expected a list"),
    (("seeds",), [0, 1, 2], "seeds", "has 3 entries, 'final_test_accuracy' 2"),
    (("samples_per_replica",), "many", "samples_per_replica", 'is "many", expected a whole number ≥ 0'),
    (("samples_per_replica",), 2.5, "samples_per_replica", "expected a whole number"),
    (("final_test_accuracy",), [0.9, "x"], "final_test_accuracy[1]", "expected an accuracy from 0 to 1"),
    (("final_test_accuracy",), [91.2, 90.1], "final_test_accuracy[0]", "is 91.2, expected an accuracy from 0 to 1"),
    (("history",), [1, 2], "history[0]", "expected an object"),
    (("history", 1, "test_accuracy"), "high", "history[1].test_accuracy", "expected a list"),
    (("history", 0, "step"), "first", "history[0].step", "expected a whole number"),
    (("ledger",), {"layers": []}, "ledger", "expected a list"),
    (("ledger", 1, "network", "memristor_ops", "worst"), "lots", "ledger[1].network.memristor_ops.worst", "expected a number"),
    (("ledger", 0, "layers", 2, "weights"), -5, "ledger[0].layers[2].weights", "expected a whole number ≥ 0"),
    (("ledger", 0, "layers", 0, "histogram", "fecap_ops", "counts"), "many", "ledger[0].layers[0].histogram.fecap_ops.counts",
     "expected a list"),
    (("timing", "train_seconds"), "slow", "timing.train_seconds", "expected a number"),
    (("versions",), ["0.1"], "versions", "expected an object"),
])
def test_a_field_of_the_wrong_type_is_named(small_run, tmp_path, path, value, field, expected):
    """A hand-edited or foreign file: refused when read, naming the file and the field, never a crash
    deep in the page (it had been an AttributeError or TypeError: 'unexpected … a bug')."""
    run = _copy(small_run, tmp_path / "run", _set(path, value))
    with pytest.raises(DataError) as e:
        build_report([str(run)])
    assert str(e.value).startswith(f"{run / 'results.json'}: '{field}' ") and expected in str(e.value), str(e.value)


def test_nulls_a_strict_writer_stores_are_read(small_run, tmp_path):
    """null stands for nan (and, in a margin, inf): a number field may hold it."""
    def edit(res):
        res["ledger"][0]["network"]["energy_nJ"]["per_device"] = None
        res["ledger"][0]["network"]["endurance"]["memristor_margin"] = None
        res["timing"]["sample_replicas_per_second"] = None
        res["samples_per_replica"] = None
    run = read_run(_copy(small_run, tmp_path / "run", edit))
    assert math.isnan(run.network.energy_per_device_nJ[0]) and run.network.memristor_margin[0] == math.inf
    assert run.samples_per_replica is None


def _set_all(res, path: str, value) -> int:
    """Set every value at a FIELDS path ('*': each item of a list) to ``value``; how many were set."""
    def walk(d, parts):
        head, rest = parts[0], parts[1:]
        keys = range(len(d)) if head == "*" and isinstance(d, list) else [head] if isinstance(d, dict) and head in d else []
        return sum(walk(d[k], rest) if rest else (d.__setitem__(k, value) or 1) for k in keys)
    return walk(res, path.split("."))


def _with_histograms(res):
    for rep in res["ledger"]:
        for layer in rep["layers"]:
            layer["histogram"] = {"memristor_ops": {"edges": [0, 10, 20, 30], "counts": [0, 0, layer["weights"]]},
                                  "fecap_ops": {"edges": [0, 100, 200, 300], "counts": [1, layer["weights"] - 2, 1]}}


# Every timing and ledger number FIELDS lets be null, i.e. that a strict writer may have stored as null
# (nan, or an infinite margin); taken from FIELDS, so a number added there is tested here too.
NULLABLE_NUMBERS = [path for path, (what, test, _) in FIELDS if path.startswith(("timing.", "ledger.")) and
                    what.startswith("a number") and test(None)]


def _visible(page: str) -> str:
    """The page's text outside scripts, tags and the configuration table (where null is a config's own None)."""
    page = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    page = re.sub(r'<section id="[^"]*-config-section">.*?</section>', "", page, flags=re.S)
    return re.sub(r"<[^>]*>", "|", page)


def test_every_nullable_timing_and_ledger_number_is_listed():
    assert {"timing.train_seconds", "timing.compile_seconds", "timing.sample_replicas_per_second",
            "ledger.*.network.memristor_ops.worst", "ledger.*.layers.*.endurance.fecap_margin",
            "ledger.*.layers.*.histogram.fecap_ops.edges.*"} <= set(NULLABLE_NUMBERS)
    assert len(NULLABLE_NUMBERS) == 3 + 2 * 13 + 2  # timing, layers' and network's ledger numbers, histogram edges


@pytest.mark.parametrize("path", NULLABLE_NUMBERS)
def test_a_null_number_is_shown_as_not_recorded(small_run, tmp_path, path):
    """null where FIELDS allows it is shown n/a (an infinite margin ∞×), never formatted as a number:
    a null timing.compile_seconds had crashed the page ('unexpected TypeError … a bug'), other nulls had
    read 'nan', a null worst count made a lifetime 'never', and a null histogram edge a TypeError."""
    def edit(res):
        _with_histograms(res)
        assert _set_all(res, path, None) > 0
    run = _copy(small_run, tmp_path / "run", edit)
    page, figs = build_report([str(run)])
    text = _visible(page)
    assert not re.search(r"\b(nan|inf|None)\b", text), re.findall(r".{60}\b(?:nan|inf|None)\b.{20}", text)
    sid = "run-run"
    if path.endswith("margin"):  # read_json: a null margin is an infinite one (a device never written)
        assert re.search(r"<td>∞×</td><td>[^<]*</td></tr>" if "fecap" in path else r"<td>∞×</td></tr>", page)
    elif ".histogram." in path:  # a histogram that cannot be placed is left out: here every chip's, of one kind
        writes = {f.id for f in figs if f.id.startswith(f"{sid}-writes")}
        assert writes == ({f"{sid}-writes-fecap"} if "memristor" in path else {f"{sid}-writes-memristor"})
    elif path.endswith(("per_device_fecap", "per_device_memristor")) and ".layers." in path:
        pass  # not on the page: the paper's section reads the network's
    elif path.startswith("ledger.*.layers"):
        ledger = re.search(rf'<table id="{sid}-ledger">.*?</table>', page, flags=re.S).group(0)
        assert ledger.count("<td>n/a</td>") == 3, ledger  # each layer's, not the network's
    else:
        assert "<td>n/a</td>" in page
    # the lifetimes the page's script rescales: 'nan' (shown n/a), never a non-JSON NaN in the plot's data
    for attr in re.findall(r'data-lifetime="([^"]*)"', page):
        json.loads(html.unescape(attr), parse_constant=lambda c: pytest.fail(f"{c} in data-lifetime"))
    assert set(re.findall(r'data-days-at-1="([a-z]+)"', page)) <= {"inf", "nan"}


@pytest.mark.parametrize("field, row, shown", [
    ("compile_seconds", "of which compiling or loading kernels", "n/a"),
    ("train_seconds", "wall time (training)", "n/a"),
    ("sample_replicas_per_second", "speed (without them)", "n/a"),
])
def test_null_timing_in_provenance(small_run, tmp_path, field, row, shown):
    run = _copy(small_run, tmp_path / "run", _set(("timing", field), None))
    page, _ = build_report([str(run)])
    assert f"<th>{row}</th><td>{shown}</td>" in page


def test_report_of_a_run_with_null_compile_seconds(small_run, tmp_path):
    """The reviewer's reproduction: `ferristor report RUN` had exited with 'unexpected TypeError … a bug'."""
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    run = _copy(small_run, tmp_path / "run", _set(("timing", "compile_seconds"), None))
    r = CliRunner().invoke(cli, ["report", str(run)])
    assert r.exit_code == 0, r.output
    assert "<th>of which compiling or loading kernels</th><td>n/a</td>" in (run / "report.html").read_text()


def test_one_chips_null_worst_makes_the_worst_not_recorded(small_run, tmp_path):
    """The worst of the other chips need not be the worst: n/a, and so are the lifetimes it sets; the
    mean is over the chips that record one, and the FeCAP's lifetime, recorded, is still projected."""
    run = _copy(small_run, tmp_path / "run", _set(("ledger", 1, "network", "memristor_ops", "worst"), None))
    page, _ = build_report([str(run)])
    network = re.search(r'<tr class="total">(.*?)</tr>', page).group(1)
    cells = re.findall(r"<td>(.*?)</td>", network)
    assert cells[7] == "n/a" and cells[6] != "n/a" and cells[5] != "n/a", cells
    measured = re.search(r'<tr class="measured">(.*?)</tr>', page).group(1)
    mem_ops, mem_days, fe_ops, fe_days = re.findall(r"<td[^>]*>(.*?)</td>", measured)[1:]
    assert (mem_ops, mem_days) == ("n/a", "n/a") and fe_ops != "n/a" and fe_days.endswith(" d")
    assert 'data-days-at-1="nan"' in measured and " n/a: not recorded in results.json (null)" in page


def test_null_accuracies_are_shown_as_not_recorded(small_run, tmp_path):
    def edit(res):
        res["final_test_accuracy"][1] = None
        res["history"][0]["test_accuracy"] = [None, None]
        res["history"][1]["epoch"] = None
    page, _ = build_report([str(_copy(small_run, tmp_path / "run", edit))])
    summary = re.search(r'id="run-run-summary".*?</table>', page).group(0)
    assert re.search(r"<td>\d+\.\d\d  \(per seed: \d+\.\d\d, n/a\)</td>", summary), summary  # one seed: no ± 0.00
    rows = re.findall(r"<tr>(.*?)</tr>", re.search(r'id="run-run-accuracy-table".*?</table>', page).group(0))
    assert re.findall(r"<td>(.*?)</td>", rows[1])[2:] == ["n/a", "n/a", "n/a"]  # rows[0]: the head
    assert re.findall(r"<td>(.*?)</td>", rows[2])[0] == "n/a"
    assert not re.search(r"\bnan\b", _visible(page))


def test_a_paper_preset_without_epochs_says_so(tmp_path):
    """A file that matches a Fig. 5f preset but records no epochs had failed formatting None."""
    (tmp_path / "r").mkdir()
    cfg = {"dataset": "mnist", "mode": "hm-var", "rule": {"k": 100, "p": 0.2, "lr": 0.1},
           "network": {"sizes": [784, 200, 100, 10], "norm": "layer", "output": "softmax"}}
    (tmp_path / "r" / "results.json").write_text(json.dumps({"config": cfg, "final_test_accuracy": [0.9]}))
    page, _ = build_report([str(tmp_path / "r")])
    assert "this run&#x27;s results do not record its epochs, the paper trained 10" in page


def _folder_of_runs(small_run, tmp_path):
    """runs/: a good run, one whose results.json is corrupt, and one still going (only its .lock)."""
    good = _copy(small_run, tmp_path / "runs" / "good")
    _copy(small_run, tmp_path / "runs" / "bad", _set(("seeds",), 3))
    (tmp_path / "runs" / "going").mkdir()
    (tmp_path / "runs" / "going" / ".lock").touch()
    return good.parent


def test_a_folder_of_runs_skips_the_unreadable_and_the_unfinished_with_a_warning(small_run, tmp_path):
    runs = _folder_of_runs(small_run, tmp_path)
    skipped = []
    with pytest.warns(FerristorWarning) as said:
        found, sweeps = resolve([str(runs)], "PATH", skipped)
    assert [r.name for r in found] == ["good"] and sweeps == []
    assert skipped == [f"{runs / 'bad' / 'results.json'}: 'seeds' is 3, expected a list or null",
                       f"{runs / 'going'}: unfinished (no results.json)"]
    assert [str(w.message) for w in said] == [f"skipped: {m}" for m in skipped]
    with pytest.warns(FerristorWarning):
        page, _ = build_report([str(runs)])
    assert '<section id="skipped">' in page and "unfinished (no results.json)</li>" in page and 'id="run-good"' in page


def test_a_run_named_itself_is_not_skipped(small_run, tmp_path):
    runs = _folder_of_runs(small_run, tmp_path)
    with pytest.raises(DataError, match="'seeds' is 3"):
        resolve([str(runs / "good"), str(runs / "bad")])
    with pytest.raises(DataError, match=r"PATH '.*going': unfinished \(no results.json\); report reads training runs"):
        resolve([str(runs / "going")])


def test_a_folder_with_nothing_readable_is_an_error(small_run, tmp_path):
    runs = _folder_of_runs(small_run, tmp_path)
    shutil.rmtree(runs / "good")
    with pytest.raises(DataError, match=r"no run or sweep in it can be read: .*bad/results.json: 'seeds' is 3.*; "
                                        r".*going: unfinished"):
        resolve([str(runs)])


def test_an_unfinished_run_does_not_end_the_search_below(small_run, tmp_path):
    """nest/a unfinished beside nest/grp/x/results.json: the search had stopped at nest/a ('no run or
    sweep in it can be read: nest/a: unfinished'); it names a and goes on into grp, as before unfinished
    runs were named. What is left out is not looked into (a fig6 output's backbones/ is not a run)."""
    nest = tmp_path / "nest"
    (nest / "a").mkdir(parents=True)
    (nest / "a" / "checkpoint.pt").write_bytes(b"")
    _copy(small_run, nest / "grp" / "x")
    (nest / "grp" / "y").mkdir()
    (nest / "grp" / "y" / ".lock").touch()
    _fig6_output(nest / "f6")
    _copy(small_run, nest / "a" / "inside")  # below the unfinished run: not one of nest's runs
    skipped = []
    with pytest.warns(FerristorWarning) as said:
        runs, sweeps = resolve([str(nest)], "PATH", skipped)
    assert [r.path for r in runs] == [nest / "grp" / "x"] and sweeps == []
    assert skipped == [f"{nest / 'a'}: unfinished (no results.json)", f"{nest / 'f6'}: a Fig. 6 transfer-learning output "
                       "(ferristor fig6): its figure and table are fig6.png and fig6.txt", f"{nest / 'grp' / 'y'}: unfinished (no results.json)"]
    assert [str(w.message) for w in said] == [f"skipped: {m}" for m in skipped]
    shutil.rmtree(nest / "grp" / "x")  # nothing left to read: an error naming what was left out
    with pytest.raises(DataError, match=r"no run or sweep in it can be read: .*nest/a: unfinished.*; .*nest/grp/y: unfinished"):
        resolve([str(nest)])


def test_a_driver_lock_beside_sweeps_is_no_unfinished_run(small_sweep, tmp_path):
    """reproduce's OUT holds its own .lock beside its sweep folders: not an unfinished run."""
    out = tmp_path / "reproduce"
    shutil.copytree(small_sweep, out / "fig5cde")
    (out / ".lock").touch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs, sweeps = resolve([str(out)])
    assert runs == [] and [s.name for s in sweeps] == ["reproduce/fig5cde"]


def _fig6_output(p, finished=True):
    """The files `ferristor fig6 --out p` writes (module doc of transfer_learning/fig6.py)."""
    for d in ("pairs", "features", "backbones/mnist-lenet"):
        (p / d).mkdir(parents=True)
    (p / "pairs" / "mnist-to-fashion-mnist.json").write_text("{}")
    (p / "backbones" / "mnist-lenet" / "pretrain.json").write_text("{}")
    (p / "backbones" / "mnist-lenet" / "backbone.pt").write_bytes(b"")
    (p / ".lock").touch()
    if finished:
        for f in ("fig6.json", "fig6.txt", "fig6.png"):
            (p / f).write_text("{}")


ACCEPTS = "report reads training runs (a folder holding results.json"


@pytest.mark.parametrize("make, message", [
    (lambda p: _fig6_output(p), "a Fig. 6 transfer-learning output (ferristor fig6): its figure and table are fig6.png and fig6.txt; "
                                + ACCEPTS),
    (lambda p: _fig6_output(p, finished=False), "a Fig. 6 transfer-learning output (ferristor fig6): unfinished, its finished "
                                                "pairs are in pairs/; " + ACCEPTS),
    (lambda p: _fig6_output(p.parent / "f6") or shutil.move(p.parent / "f6" / "backbones" / "mnist-lenet", p),
     "a pretrained backbone (ferristor pretrain): its training record is pretrain.json, the backbone backbone.pt; " + ACCEPTS),
    (lambda p: _fig6_output(p / "f6"), "no run or sweep in it can be read: {p}/f6: a Fig. 6 transfer-learning output"),
    (lambda p: p.mkdir() or (p / "x").mkdir() or (p / "x" / "notes.txt").touch(),
     "holds no results.json and no sweep (sweep.sqlite or trials/), nor do the folders in it, down to 2 levels; " + ACCEPTS),
])
def test_another_commands_output_is_named(tmp_path, make, message):
    """`report` on a fig6 or pretrain folder had said only that it holds no results.json and no sweep."""
    p = tmp_path / "out"
    make(p)
    with pytest.raises(DataError) as e:
        resolve([str(p)], "PATH")
    assert str(e.value).startswith(f"PATH '{p}': {message.format(p=p)}"), str(e.value)


def test_another_commands_output_among_runs_is_skipped_with_its_name(small_run, tmp_path):
    _copy(small_run, tmp_path / "runs" / "good")
    _fig6_output(tmp_path / "runs" / "fig6")
    with pytest.warns(FerristorWarning, match=r"skipped: .*fig6: a Fig. 6 transfer-learning output"):
        runs, _ = resolve([str(tmp_path / "runs")])
    assert [r.name for r in runs] == ["good"]


def _one_seed(res):
    """The run's first chip alone: every per-seed list cut to its first entry."""
    res["seeds"], res["final_test_accuracy"], res["ledger"] = res["seeds"][:1], res["final_test_accuracy"][:1], res["ledger"][:1]
    for h in res["history"]:
        h["test_accuracy"] = h["test_accuracy"][:1]


def test_counts_of_one_are_singular(small_run, tmp_path):
    """A one-seed report had said '1 seeds' and 'the worst of 1 chips'."""
    run = _copy(small_run, tmp_path / "one", _one_seed)
    page, figs = build_report([str(run)])
    text = page + " ".join(f.note or "" for f in figs)
    assert not re.search(r"\b1 (seeds|chips|runs|trials|samples|training samples)\b", text)
    assert "the run&#x27;s one chip" in page
    assert next(f for f in figs if f.id.endswith("-accuracy")).note == "1 seed."
    two, _ = build_report([str(small_run)])
    assert "over the 2 chips" in two and "the worst of 2 chips" in two


def test_a_folder_without_results_is_looked_at_once(tmp_path, monkeypatch):
    """resolve had asked other_output twice for a path holding no run (once to search, once to say why)."""
    import ferristor.report.inputs as inputs
    asked, real = [], inputs.other_output
    monkeypatch.setattr(inputs, "other_output", lambda folder: asked.append(folder) or real(folder))
    (tmp_path / "x" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no results.json and no sweep"):
        resolve([str(tmp_path / "x")])
    assert asked.count(tmp_path / "x") == 1, asked


@pytest.mark.parametrize("edit, said", [
    (_set(("seeds",), 3), "'seeds' is 3, expected a list or null"),
    (_set(("final_test_accuracy",), [0.9]), "'seeds' has 2 entries, 'final_test_accuracy' 1: expected one per seed"),
    (_set(("history", 0, "test_accuracy"), 7), "'history[0].test_accuracy' is 7, expected a list"),
])
def test_compare_refuses_the_seeds_report_refuses(small_run, tmp_path, edit, said):
    """compare reads fewer fields than report, with the same validators: it had taken 'seeds': 3, and one
    accuracy for two seeds, silently."""
    from ferristor.experiments.compare import load_runs
    run = _copy(small_run, tmp_path / "run", edit)
    for read in (lambda: build_report([str(run)]), lambda: load_runs([run])):
        with pytest.raises(DataError) as e:
            read()
        assert str(e.value) == f"{run / 'results.json'}: {said}"


def test_write_histograms_have_bars_as_wide_as_their_bins(small_run, tmp_path):
    """Six traces grouped into one bin's width had drawn hairlines (a 313,600-device memristor spike as a
    sliver), and the static copy 0.8/6 operations wide bars: empty. Memristor and FeCAP get a panel
    each, layers overlaid, each bar its bin's width, a log count axis where counts span decades."""
    from ferristor.report.figures import plotly_json
    from ferristor.report.static import draw

    def edit(res):
        for rep in res["ledger"]:
            for layer in rep["layers"]:
                layer["histogram"] = {"memristor_ops": {"edges": [12.0, 13.0], "counts": [layer["weights"]]},
                                      "fecap_ops": {"edges": [184.0, 189.5, 195.0, 200.5], "counts": [3, layer["weights"] - 5, 2]}}
    run = _copy(small_run, tmp_path / "run", edit)
    _, figs = build_report([str(run)])
    mem, fe = (next(f for f in figs if f.id.endswith(f"-writes-{k}")) for k in ("memristor", "fecap"))
    for fig, width in ((mem, 1.0), (fe, 5.5)):
        data, layout = plotly_json(fig)
        assert layout["barmode"] == "overlay" and all(d["width"] == [width] * len(d["x"]) for d in data)
        assert fig.y_log  # FeCAP: 2 devices beside 156,795; both: a layer of 156,800 weights beside one of 1,000s
        mfig = draw(fig)
        patches = [p for p in mfig.axes[0].patches if p.get_height() > 0]
        assert patches and all(p.get_width() == pytest.approx(width) for p in patches)


def test_a_reproduce_folder_beside_runs_is_named_and_one_two_levels_down_is_read(small_run, small_sweep, tmp_path):
    """`report runs/` left out runs/rep/fig5cde (runs/rep a reproduce --out) without a word."""
    import shutil
    runs = tmp_path / "runs"
    shutil.copytree(small_run, runs / "k20")
    shutil.copytree(small_sweep, runs / "rep" / "fig5cde")
    with pytest.warns(Warning, match=r"rep: not looked into .* it holds fig5cde: give .*rep as a PATH of its own"):
        page, _ = build_report([str(runs)])
    assert 'id="run-k20"' in page and "it holds fig5cde" in page.split('<ul id="skipped-list">')[1].split("</ul>")[0]
    shutil.rmtree(runs / "k20")  # nothing directly inside: the sweep two levels down is read
    page, _ = build_report([str(runs)])
    assert 'id="sweep-rep-fig5cde"' in page


def test_the_comparison_names_its_seed_count_and_skips_unread_settings(small_run, tmp_path):
    """Two columns had both been headed 'seeds'; transfer.sigma_levels had been a difference between hm
    runs, whose ideal transfer never reads it."""
    a = _copy(small_run, tmp_path / "a", _set(("config", "mode"), "hm"))
    b = _copy(small_run, tmp_path / "b", lambda res: (_set(("config", "mode"), "hm")(res),
                                                      _set(("config", "transfer", "model"), "ideal")(res),
                                                      _set(("config", "transfer", "sigma_levels"), 0.3)(res),
                                                      _set(("config", "seeds"), [5, 6])(res), _set(("seeds",), [5, 6])(res)))
    res = json.loads((a / "results.json").read_text())
    res["config"]["transfer"]["model"] = "ideal"
    (a / "results.json").write_text(json.dumps(res))
    page, _ = build_report([str(a), str(b)])
    head = re.search(r'<table id="runs-compared-table"><thead><tr>(.*?)</tr>', page).group(1)
    assert head.count("<th>seeds</th>") == 1 and "<th>number of seeds</th>" in head
    assert "transfer.sigma_levels" not in head


def test_the_same_run_given_twice_is_shown_once_with_a_warning(small_run):
    with pytest.warns(Warning, match="given more than once, shown once"):
        page, _ = build_report([str(small_run), str(small_run), str(small_run / "results.json")])
    assert page.count('<section id="run-small-run">') == 1 and 'id="run-small-run-2"' not in page and "runs compared" not in page


@pytest.mark.parametrize("name", ["sweep.sqlite", "checkpoint.pt", ".lock"])
def test_a_file_inside_a_folder_asks_for_the_folder(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x00\xff binary")
    with pytest.raises(DataError, match=rf"a file in a run or sweep folder, not a results file; give the folder \({tmp_path}\)"):
        build_report([str(tmp_path / name)])


def test_the_run_page_states_the_networks_energy_and_what_energy_per_device_is(small_run, tmp_path):
    res = json.loads((small_run / "results.json").read_text())
    fe = sum(r["network"]["energy_nJ"]["fecap_total"] for r in res["ledger"]) / len(res["ledger"])
    mem = sum(r["network"]["energy_nJ"]["memristor_total"] for r in res["ledger"]) / len(res["ledger"])
    page, figs = build_report([str(small_run)], rate=10)
    total = re.search(r"<th>energy, whole network</th><td>([^<]*)</td>", page).group(1)
    from ferristor.experiments.summary import energy_text
    assert total == energy_text(fe + mem, fe, mem, largest="µJ") + "), mean over chips"
    assert "one sign/MSB FeCAP + one memristor" in re.search(r"<th>energy / device</th><td>([^<]*)</td>", page).group(1)
    assert "Energy/device: one sign/MSB FeCAP cell and one memristor" in page
    life = next(f for f in figs if f.id.endswith("-lifetime-plot"))
    assert life.title.endswith("(sample rate 10/s)") and life.data_attrs["data-title"].endswith("(sample rate {rate}/s)")


def test_layers_rated_differently_take_their_most_conservative_ratings():
    """fit records each layer's ledger where the layers differ, and no common one: the lifetimes had
    taken LedgerConfig's default ratings instead (1e5 memristor cycles where both layers had 1e6 or more)."""
    from ferristor.report.runs import endurance_of
    layers = [{"name": "fc1", "config": {"ledger": {"memristor_endurance_cycles": 2e6, "fecap_endurance_cycles": 1e8,
                                                    "fecap_energy_fj": 50.0}}},
              {"name": "fc2", "config": {"ledger": {"memristor_endurance_cycles": 1e6, "fecap_endurance_cycles": 1e9,
                                                    "memristor_ops_per_transfer": 3}}}]
    e = endurance_of({"network": {"layers": layers}})
    assert (e.memristor_cycles, e.fecap_cycles, e.memristor_ops_per_transfer) == (1e6, 1e8, 3.0)
    assert endurance_of({"ledger": {"memristor_endurance_cycles": 5e5}, "network": {"layers": layers}}).memristor_cycles == 5e5
