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
