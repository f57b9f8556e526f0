"""`ferristor compare` on a sweep folder, and `ferristor results --where` with an accuracy in percent."""
import json

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.config_base import to_dict
from ferristor.experiments.config import task_config
from ferristor.sweeps.store import open_store


def _sweep(folder):
    folder.mkdir()
    open_store(folder).close()  # an (empty) results store: what `ferristor sweep` leaves, no results.json
    return folder


def _run(folder, acc):
    folder.mkdir()
    cfg = to_dict(task_config("ecg", "hm", seeds=list(range(len(acc)))))  # one seed per accuracy
    (folder / "results.json").write_text(json.dumps({"config": cfg, "final_test_accuracy": acc}))
    return folder


def test_compare_of_a_sweep_folder_says_where_its_trials_are_and_fails(tmp_path):
    # was "skipped, no results.json yet" and exit 0
    sweep = _sweep(tmp_path / "sw")
    r = CliRunner().invoke(cli, ["compare", str(sweep)])
    assert r.exit_code == 2
    assert f"a sweep folder, not a run: {sweep}" in r.stderr and f"ferristor results {sweep}" in r.stderr
    assert "no results.json yet" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith("error: nothing to compare") and str(sweep) in r.stderr.splitlines()[-1]


def test_compare_of_a_sweep_beside_a_run_compares_the_run(tmp_path):
    sweep, run = _sweep(tmp_path / "sw"), _run(tmp_path / "run", [0.9, 0.8])
    r = CliRunner().invoke(cli, ["compare", str(sweep), str(run)])
    assert r.exit_code == 0 and "| run | 2 | 85.00 ± 7.07 |" in r.stdout and "a sweep folder" in r.stderr


def test_compare_of_runs_still_going_only_fails(tmp_path):
    (tmp_path / "going").mkdir()
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "going")])
    assert r.exit_code == 2 and "skipped, no results.json yet" in r.stderr and "nothing to compare" in r.stderr


@pytest.mark.parametrize("condition, fraction", [("test_accuracy>40", "test_accuracy>0.4"),
                                                 ("val_accuracy <= 95.5", "val_accuracy<=0.955"),
                                                 ("test_accuracy>=90%", "test_accuracy>=0.9")])
def test_results_refuses_an_accuracy_in_percent(tmp_path, condition, fraction):
    # was "(no rows: no finished trial matches)", exit 0: the store holds fractions 0-1
    sweep = _sweep(tmp_path / "sw")
    r = CliRunner().invoke(cli, ["results", str(sweep), "--where", condition])
    assert r.exit_code == 2
    assert "accuracies are stored as fractions 0–1" in r.stderr and f"write {fraction}" in r.stderr


@pytest.mark.parametrize("condition", ["test_accuracy>0.4", "test_accuracy<=1", "rule.k>40", "seed>=0"])
def test_results_accepts_a_fraction_and_other_columns(tmp_path, condition):
    r = CliRunner().invoke(cli, ["results", str(_sweep(tmp_path / "sw")), "--where", condition])
    assert r.exit_code == 0, r.output


def _edited(folder, edit):
    """A run folder whose results.json is a valid one edited by hand: ``edit`` changes the dict, or is the text."""
    folder.mkdir()
    data = {"config": to_dict(task_config("ecg", "hm", seeds=[0, 1])), "final_test_accuracy": [0.9, 0.8]}
    if not isinstance(edit, str):
        edit(data)
    (folder / "results.json").write_text(edit if isinstance(edit, str) else json.dumps(data))
    return folder


def _network(**fields):
    return lambda d: d.update(ledger=[{"network": fields}] * 2)


@pytest.mark.parametrize("edit, said", [
    ("{not json", "cannot read it as JSON ("),
    ("[]", "not a ferristor results file: it holds [], expected an object"),
    (lambda d: d.pop("config"), "'config' is missing, expected an object"),
    (lambda d: d.pop("final_test_accuracy"), "'final_test_accuracy' is missing, expected a non-empty list"),
    (lambda d: d.update(final_test_accuracy=[]), "'final_test_accuracy' is [], expected a non-empty list"),
    (lambda d: d.update(final_test_accuracy=[91.2, 90.1]), "'final_test_accuracy[0]' is 91.2, expected an accuracy from 0 to 1"),
    (lambda d: d.update(final_test_accuracy=[0.9, "x"]), "'final_test_accuracy[1]' is \"x\", expected an accuracy"),
    (lambda d: d["config"].update(rule=None), "'config.rule' is null, expected an object"),
    (lambda d: d["config"].update(epochs="ten"), "'config.epochs' is \"ten\", expected a number"),
    (lambda d: d.update(ledger={"network": {}}), "'ledger' is {\"network\": {}}, expected a list or null"),
    (_network(energy_nJ=[38.4]), "'ledger[0].network.energy_nJ' is [38.4], expected an object"),
    (_network(energy_nJ={"per_device": "lots"}), "'ledger[0].network.energy_nJ.per_device' is \"lots\", expected a number or null"),
    (_network(endurance={"memristor_margin": "big"}), "'ledger[0].network.endurance.memristor_margin' is \"big\", expected a number"),
])
def test_compare_and_report_refuse_a_hand_edited_results_file_alike(tmp_path, edit, said):
    """compare had its own checks ('is not a list of numbers'), report FIELDS': one check now, one message
    naming the file, the field and what it may be, in one line, never a traceback."""
    run = _edited(tmp_path / "run", edit)
    lines = []
    for command in ("compare", "report"):
        r = CliRunner().invoke(cli, [command, str(run)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert r.stdout == "" and r.stderr.count("\n") == 1, r.output
        lines.append(r.stderr.strip())
    assert lines[0] == lines[1], lines
    assert lines[0].startswith(f"error: {run / 'results.json'}: ") and said in lines[0], lines[0]


# --- what a folder of runs leaves out is named, with why ------------------------------------------------

def _killed(folder):
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"")  # training killed midway: a checkpoint, no results.json
    return folder


def _reproduce_out(folder):
    folder.mkdir()
    (folder / ".lock").write_text("")
    _sweep(folder / "fig5f")  # what `ferristor reproduce fig5f --out folder` leaves
    return folder


def test_compare_of_a_folder_names_what_it_leaves_out(tmp_path):
    # compare runs/ had dropped the unfinished run, the sweeps and the reproduce folder in it silently
    runs = tmp_path / "runs"
    runs.mkdir()
    _run(runs / "a", [0.9, 0.8])
    killed, sweep, rep = _killed(runs / "killed"), _sweep(runs / "sw"), _reproduce_out(runs / "rep")
    (runs / "cr" / "mnist").mkdir(parents=True)
    _run(runs / "cr" / "mnist" / "hm", [0.5])  # runs two levels down, beside runs one level down
    r = CliRunner().invoke(cli, ["compare", str(runs)])
    assert r.exit_code == 0 and "| a | 2 | 85.00 ± 7.07 |" in r.stdout, r.output
    said = r.stderr.splitlines()
    assert all(line.startswith("skipped, ") for line in said), said
    assert any(f"unfinished, no results.json yet: {killed}" in line for line in said), said
    assert any(f"a sweep folder, not a run: {sweep}" in line and f"ferristor results {sweep}" in line for line in said)
    assert any(f"a ferristor reproduce folder, not a run: {rep}" in line and f"ferristor report {rep}" in line
               and f"ferristor results {rep / 'fig5f'} --final" in line for line in said), said
    assert any(f"not looked into: {runs / 'cr'}; ferristor compare {runs / 'cr'}" in line for line in said), said
    assert len(said) == 4


def test_compare_of_a_reproduce_folder_says_what_it_is(tmp_path):
    # was "skipped, no results.json yet: runs/rep", as if a run were still going
    rep = _reproduce_out(tmp_path / "rep")
    r = CliRunner().invoke(cli, ["compare", str(rep)])
    assert r.exit_code == 2, r.output
    assert "no results.json yet" not in r.stderr
    assert f"skipped, a ferristor reproduce folder, not a run: {rep} (its figures fig5f are sweeps)" in r.stderr
    assert f"ferristor report {rep}" in r.stderr and r.stderr.splitlines()[-1].startswith("error: nothing to compare")


def test_compare_of_an_unfinished_run_says_it_is_unfinished(tmp_path):
    killed = _killed(tmp_path / "killed")
    r = CliRunner().invoke(cli, ["compare", str(killed)])
    assert r.exit_code == 2 and f"skipped, unfinished, no results.json yet: {killed}" in r.stderr, r.output


def test_compare_looks_past_an_unfinished_run_for_runs_two_levels_down(tmp_path):
    (tmp_path / "cr" / "mnist").mkdir(parents=True)
    _run(tmp_path / "cr" / "mnist" / "hm", [0.5])
    _killed(tmp_path / "cr" / "killed")
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "cr")])
    assert r.exit_code == 0 and "| hm | 1 | 50.00 ± n/a |" in r.stdout, r.output
    assert r.stderr.splitlines() == [
        f"skipped, unfinished, no results.json yet: {tmp_path / 'cr' / 'killed'} (a run still going, or stopped before "
        "it finished: its command, run again, resumes it)"]


# --- compare and report agree (one implementation each) -------------------------------------------------

def test_compare_and_report_leave_out_a_setting_the_runs_do_not_read(tmp_path):
    """compare had listed transfer.sigma_levels as differing for hm runs, whose ideal transfer never
    reads it (report hides it): both take report.build.differing now."""
    from ferristor.experiments.compare import differing_fields
    from ferristor.report.build import differing
    runs = []
    for name, sigma, lr in (("a", 0.1, 0.03), ("b", 0.3, 0.01)):
        folder = tmp_path / name
        folder.mkdir()
        cfg = to_dict(task_config("ecg", "hm", seeds=[0], lr=lr))
        cfg["transfer"]["sigma_levels"] = sigma
        (folder / "results.json").write_text(json.dumps({"config": cfg, "final_test_accuracy": [0.9]}))
        runs.append(cfg)
    assert differing_fields(runs) == ["rule.lr"] and "transfer.sigma_levels" not in differing(runs)[0]
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("| run | rule.lr | seeds |"), r.output


def test_compare_shows_a_run_given_twice_once_as_report_does(tmp_path):
    run = _run(tmp_path / "run", [0.9, 0.8])
    r = CliRunner().invoke(cli, ["compare", str(run), str(run), str(run / "results.json")])
    assert r.exit_code == 0, r.output
    assert r.stdout.count("| run | 2 |") == 1
    assert r.stderr.count(f"skipped, {run}: given more than once, shown once") == 1
    assert f"skipped, {run / 'results.json'}: given more than once, shown once" in r.stderr
    # results files of other names in one folder are runs of their own (the folder had stood for both)
    (tmp_path / "two").mkdir()
    for name, k in (("k100.json", 100), ("k10.json", 10)):
        cfg = to_dict(task_config("ecg", "hm", seeds=[0], k=k))
        (tmp_path / "two" / name).write_text(json.dumps({"config": cfg, "final_test_accuracy": [0.9]}))
    r = CliRunner().invoke(cli, ["compare", str(tmp_path / "two" / "k100.json"), str(tmp_path / "two" / "k10.json")])
    assert r.exit_code == 0 and "given more than once" not in r.stderr, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("| run | rule.k |") and [line.split("|")[2].strip() for line in lines[2:]] == ["100", "10"]


def test_compare_of_a_sweeps_store_file_says_to_give_the_folder_as_report_does(tmp_path):
    # was "cannot read it as JSON ('utf-8' codec can't decode …)"
    sweep = _sweep(tmp_path / "sw")
    lines = []
    for command in ("compare", "report"):
        r = CliRunner().invoke(cli, [command, str(sweep / "sweep.sqlite")])
        assert r.exit_code == 2 and "JSON" not in r.stderr, r.output
        lines.append(r.stderr.strip())
    assert "a file in a run or sweep folder, not a results file; give the folder (" in lines[0]
    assert lines[0].replace("RUN", "PATH") == lines[1]



# --- compare walks a folder as report does (report.walk) -------------------------------------------------

def test_compare_names_a_folder_it_cannot_list(tmp_path, monkeypatch):
    from pathlib import Path
    runs = tmp_path / "runs"
    (runs / "grp").mkdir(parents=True)
    _run(runs / "grp" / "x", [0.9])
    (runs / "locked").mkdir()
    real = Path.iterdir

    def iterdir(self):  # as a folder without read permission (tests run as root)
        if self.name == "locked":
            raise PermissionError(13, "Permission denied")
        return real(self)
    monkeypatch.setattr(Path, "iterdir", iterdir)
    r = CliRunner().invoke(cli, ["compare", str(runs)])
    assert r.exit_code == 0 and "| x | 1 |" in r.stdout, r.output
    assert r.stderr.splitlines() == [f"skipped, cannot be listed: {runs / 'locked'} (Permission denied)"]


def test_compare_names_a_folder_beside_its_runs_only_where_compare_of_it_finds_runs(tmp_path):
    """runs/grp, whose only run lies inside an unfinished run (grp/killed/x), had been named 'a folder of
    runs … ferristor compare runs/grp compares them', and compare runs/grp compares nothing."""
    runs = tmp_path / "runs"
    for folder in (runs / "grp", runs / "cr"):
        folder.mkdir(parents=True)
    _run(runs / "a", [0.9])
    _run(_killed(runs / "grp" / "killed") / "x", [0.9])
    _run(runs / "cr" / "mnist", [0.9])
    r = CliRunner().invoke(cli, ["compare", str(runs)])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [f"skipped, a folder of runs beside the runs compared, not looked into: {runs / 'cr'}; "
                                     f"ferristor compare {runs / 'cr'} compares them"]
    r = CliRunner().invoke(cli, ["compare", str(runs / "grp")])
    assert r.exit_code == 2 and "nothing to compare" in r.stderr, r.output
