"""The folder walk report and lifetime (report.inputs) share with compare (report.walk): one level
below the folder given, else two; what is left out named with why, never a traceback."""
import errno
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.config_base import to_dict
from ferristor.experiments.config import task_config
from ferristor.report.inputs import resolve


def _run(folder):
    folder.mkdir(parents=True)
    cfg = to_dict(task_config("ecg", "hm", seeds=[0]))
    (folder / "results.json").write_text(json.dumps({"config": cfg, "final_test_accuracy": [0.9]}))
    return folder


def _killed(folder):
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"")  # training stopped midway: no results.json
    return folder


def _unlistable(monkeypatch, name):
    """Folders called ``name`` refuse to be listed, as one without read permission does (tests run as root)."""
    real = Path.iterdir

    def iterdir(self):
        if self.name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)
    monkeypatch.setattr(Path, "iterdir", iterdir)


def test_report_names_a_folder_beside_its_runs_that_holds_runs_two_levels_down(tmp_path):
    """`report runs/` had left runs/cr (compare-rules' OUT/<dataset>/<rule>) out without a word, where
    compare named it: a folder beside the runs is named where given alone it would be read."""
    runs = tmp_path / "runs"
    _run(runs / "a")
    cr = runs / "cr"
    _run(cr / "mnist" / "hm"), _run(cr / "ecg" / "hm")
    skipped = []
    with pytest.warns(Warning, match="it holds ecg/hm, mnist/hm"):
        found, _ = resolve([str(runs)], skipped=skipped)
    assert [r.path for r in found] == [runs / "a"]
    assert skipped == [f"{cr}: not looked into (only the runs and sweeps directly inside the folder given are), it "
                       f"holds ecg/hm, mnist/hm: give {cr} as a PATH of its own"]
    found, _ = resolve([str(cr)])
    assert [r.name for r in found] == ["ecg/hm", "mnist/hm"]


def test_report_names_a_folder_it_cannot_list_instead_of_failing(tmp_path, monkeypatch):
    """It had ended in 'unexpected PermissionError … a bug; please report it' (exit 1)."""
    _run(tmp_path / "runs" / "grp" / "x")
    (tmp_path / "runs" / "locked").mkdir()
    _unlistable(monkeypatch, "locked")
    skipped = []
    with pytest.warns(Warning, match="cannot be listed"):
        found, _ = resolve([str(tmp_path / "runs")], skipped=skipped)
    assert [r.path for r in found] == [tmp_path / "runs" / "grp" / "x"]
    assert skipped == [f"cannot be listed: {tmp_path / 'runs' / 'locked'} (Permission denied)"]
    r = CliRunner().invoke(cli, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "page")])
    assert r.exit_code == 0 and f"skipped: cannot be listed: {tmp_path / 'runs' / 'locked'}" in r.stderr, r.output


@pytest.mark.parametrize("locked", ["locked", "grp/locked"])
def test_a_folder_beside_runs_that_cannot_be_listed_is_named(tmp_path, monkeypatch, locked):
    """Beside runs one level down, it had been left out without a word by report and compare alike,
    where one that can be listed is named when it holds runs: what it holds cannot be known."""
    runs = tmp_path / "runs"
    _run(runs / "a")
    (runs / locked).mkdir(parents=True)
    _unlistable(monkeypatch, "locked")
    skipped = []
    with pytest.warns(Warning, match="cannot be listed"):
        found, _ = resolve([str(runs)], skipped=skipped)
    assert [r.path for r in found] == [runs / "a"]
    assert skipped == [f"cannot be listed: {runs / locked} (Permission denied)"]
    r = CliRunner().invoke(cli, ["compare", str(runs)])
    assert r.exit_code == 0 and "| a |" in r.stdout, r.output
    assert r.stderr.splitlines() == [f"skipped, cannot be listed: {runs / locked} (Permission denied)"]


def test_nothing_listable_is_an_error_naming_the_folder(tmp_path, monkeypatch):
    (tmp_path / "runs" / "locked").mkdir(parents=True)
    _unlistable(monkeypatch, "locked")
    with pytest.raises(Exception, match=rf"no run or sweep in it can be read: cannot be listed: {tmp_path / 'runs' / 'locked'}"):
        resolve([str(tmp_path / "runs")])


LAYOUTS = {  # folder -> what is in it; report and compare find the same runs in each
    "flat": {"a": _run, "b": _run},
    "two levels": {"cr/mnist/hm": _run, "cr/ecg/hm": _run, "cr/ecg/note": Path.mkdir},
    "unfinished beside two levels": {"killed": _killed, "grp/x": _run, "grp/y": _killed},
    "runs beside two levels": {"a": _run, "cr/mnist/hm": _run},
    "runs two levels down beside runs two levels down": {"p/a": _run, "q/r/b": _run},
    "another command's output": {"fig6/fig6.json": None, "grp/x": _run},
    "nothing": {"empty/deeper": Path.mkdir},
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_report_and_compare_walk_a_folder_of_runs_alike(tmp_path, layout):
    from ferristor.cli.compare import _runs_in
    from ferristor.report.inputs import _inside
    for where, make in LAYOUTS[layout].items():
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        make(tmp_path / where) if make else (tmp_path / where).write_text("{}")
    found, left = _inside(tmp_path)
    runs, said = _runs_in(tmp_path)
    assert [d for _, d in found] == (runs if found else [])  # compare stands a folder holding nothing for itself
    assert [m.split(": ")[0] for m in left] == [str(_named(m)) for m in said]  # the same folders named, in order


def _named(message):
    """The folder a compare message names (after 'not a run: ', 'yet: ', 'not looked into: ')."""
    return Path(message.split(": ", 1)[1].split(" ")[0].rstrip(";"))


# --- a path given that cannot be read --------------------------------------------------------------

def _unreadable(monkeypatch, path, listable=False):
    """``path`` (absolute) behaves as without read permission does for a user other than root (tests run as
    root, where chmod stops nothing): nothing below it can be looked up (a folder's mode 000, or 644 with
    ``listable``), a folder cannot be listed, a file cannot be opened."""
    real_stat, real_iterdir, real_open = Path.stat, Path.iterdir, Path.open

    def refuse(p):
        raise PermissionError(errno.EACCES, "Permission denied", str(p))

    def stat(self, **kw):
        return refuse(self) if path in self.parents else real_stat(self, **kw)

    def iterdir(self):
        return refuse(self) if self == path and not listable else real_iterdir(self)

    def open(self, *a, **kw):
        return refuse(self) if self == path or path in self.parents else real_open(self, *a, **kw)
    for name, f in (("stat", stat), ("iterdir", iterdir), ("open", open)):
        monkeypatch.setattr(Path, name, f)


UNREADABLE = {  # what cannot be read -> (the path given, the path refused); given from tmp_path
    "folder": ("runs", "runs"),
    "folder listed, not looked into": ("runs", "runs"),
    "file": ("runs/x/results.json", "runs/x/results.json"),
    "file in a folder not looked into": ("runs/x/results.json", "runs"),
}
ARG = {"report": "PATH", "lifetime": "RUN", "compare": "RUN"}


@pytest.mark.parametrize("command", ["report", "lifetime", "compare"])
@pytest.mark.parametrize("case", UNREADABLE, ids=list(UNREADABLE))
def test_a_path_given_that_cannot_be_read_is_named_exit_2(tmp_path, monkeypatch, command, case):
    """report and lifetime had ended in 'unexpected PermissionError … a bug' (exit 1), report on a file in
    'cannot read it as JSON ([Errno 13] …)', compare in what it skipped or click's usage text: each now
    says the path given cannot be read and why, in one line, exit 2, before any work (report's default
    --out lies in the folder given)."""
    _run(tmp_path / "runs" / "x")
    given, refused = (tmp_path / p for p in UNREADABLE[case])
    monkeypatch.chdir(tmp_path)
    _unreadable(monkeypatch, refused, listable="listed" in case)
    r = CliRunner().invoke(cli, [command, str(given), *(["--rate", "10"] if command == "lifetime" else [])])
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {ARG[command]} '{given}': cannot be read (Permission denied)\n", r.output
    assert not (tmp_path / "report.html").exists()


def test_a_missing_path_is_said_by_compare_as_by_report(tmp_path):
    """compare had said it in click's usage text ("Invalid value for 'RUNS...': Path … does not exist")."""
    lines = [CliRunner().invoke(cli, [command, str(tmp_path / "nope")]).stderr for command in ("compare", "report")]
    assert lines[0] == f"error: RUN '{tmp_path / 'nope'}': no such file or folder\n"
    assert lines[0].replace("RUN", "PATH") == lines[1]
