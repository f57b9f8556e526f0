"""A file inside another command's output (a Fig. 6 folder's fig6.json or pairs/<pair>.json, a
pretraining's pretrain.json) is explained by report, lifetime and compare as its folder is: it had
been read as a run's results ("'final_test_accuracy' is missing, expected a non-empty list")."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.config_base import to_dict
from ferristor.experiments.config import task_config


def _fig6(out: Path) -> Path:
    """The files `ferristor fig6 --out out` writes (module doc of transfer_learning/fig6.py), shaped as it writes them."""
    for d in ("pairs", "features", "backbones/mnist-lenet"):
        (out / d).mkdir(parents=True)
    pair = {"pair": "mnist->fashion-mnist", "source": "mnist", "target": "fashion-mnist", "heads": {}}
    (out / "pairs" / "mnist-to-fashion-mnist.json").write_text(json.dumps(pair))
    (out / "fig6.json").write_text(json.dumps({"config": {"pairs": ["mnist->fashion-mnist"], "per_class": 20},
                                               "pairs": [pair]}))
    (out / "fig6.txt").write_text("table\n")
    (out / "fig6.png").write_bytes(b"\x89PNG")
    (out / "features" / "features-0123abcd.pt").write_bytes(b"")
    _pretrain(out / "backbones" / "mnist-lenet")
    return out


def _pretrain(out: Path) -> Path:
    """The files `ferristor pretrain --out out` writes: pretrain.json (config, losses, accuracy) and backbone.pt."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "pretrain.json").write_text(json.dumps({"config": {"arch": "lenet"}, "dataset": "mnist",
                                                   "test_accuracy": 0.5, "loss": [2.0]}))
    (out / "backbone.pt").write_bytes(b"")
    return out


def _invoke(command, path, *more):
    args = {"report": ["report", str(path), *map(str, more)], "lifetime": ["lifetime", str(path), "--rate", "10"],
            "compare": ["compare", str(path), *map(str, more)]}[command]
    return CliRunner().invoke(cli, args)


FILES = {  # file given -> the output folder that explains it
    "fig6.json": "",
    "pairs/mnist-to-fashion-mnist.json": "",
    "fig6.png": "",
    "features/features-0123abcd.pt": "",
    "backbones/mnist-lenet/pretrain.json": "backbones/mnist-lenet",
    "backbones/mnist-lenet/backbone.pt": "backbones/mnist-lenet",
}


@pytest.mark.parametrize("command", ["report", "lifetime", "compare"])
@pytest.mark.parametrize("file", FILES)
def test_a_file_of_a_fig6_output_is_explained_as_its_folder(tmp_path, command, file):
    out = _fig6(tmp_path / "f1")
    folder = out / FILES[file] if FILES[file] else out
    given = _invoke(command, folder, "--out", tmp_path / "r.html") if command == "report" else _invoke(command, folder)
    r = _invoke(command, out / file, "--out", tmp_path / "r.html") if command == "report" else _invoke(command, out / file)
    assert given.exit_code == r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert _as_file(given.stderr, folder, out / file, command) == r.stderr, (given.stderr, r.stderr)


def _as_file(said: str, folder: Path, file: Path, command: str) -> str:
    """What ``command`` says of ``folder``, said of ``file`` inside it."""
    if command == "compare":  # skipped with why, then nothing to compare
        return (said.replace(f"not a run: {folder} is ", f"not a run: {file} is a file in {folder}, which is ")
                .replace(f"no finished run in {folder} ", f"no finished run in {file} "))
    return said.replace(f"'{folder}': ", f"'{file}': a file in {folder}, which is ")


@pytest.mark.parametrize("command", ["report", "lifetime", "compare"])
def test_a_pretrainings_record_is_explained_as_its_folder(tmp_path, command):
    out = _pretrain(tmp_path / "pre")
    r = _invoke(command, out / "pretrain.json")
    assert r.exit_code == 2, r.output
    assert (f"{out / 'pretrain.json'}{'' if command == 'compare' else chr(39) + ':'} "
            f"{'is ' if command == 'compare' else ''}a file in {out}, which is a pretrained backbone (ferristor pretrain): "
            f"its training record is pretrain.json, the backbone backbone.pt") in r.stderr, r.output
    assert "is missing" not in r.output


def test_a_file_of_a_fig6_output_in_a_folder_of_its_own_is_named_with_the_folder(tmp_path, monkeypatch):
    """Given as a bare name from inside the output, the folder is named (the current one), not '.'."""
    out = _fig6(tmp_path / "f1")
    monkeypatch.chdir(out)
    r = _invoke("report", "fig6.json", "--out", tmp_path / "r.html")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: PATH 'fig6.json': a file in {out}, which is a Fig. 6 transfer-learning output "
                               "(ferristor fig6): its figure and table are fig6.png and fig6.txt; report reads"), r.output


def test_compare_compares_the_runs_given_beside_a_file_of_a_fig6_output(tmp_path):
    out = _fig6(tmp_path / "f1")
    run = tmp_path / "a"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"config": to_dict(task_config("ecg", "hm", seeds=[0])),
                                                  "final_test_accuracy": [0.9]}))
    r = _invoke("compare", run, out / "fig6.json")
    assert r.exit_code == 0 and "| a |" in r.stdout, r.output
    assert r.stderr.startswith(f"skipped, not a run: {out / 'fig6.json'} is a file in {out}, which is a Fig. 6 "), r.output


def test_a_runs_own_files_are_not_taken_for_another_outputs(tmp_path):
    """A run's results.json is read, even in a folder another command also wrote into."""
    run = _pretrain(tmp_path / "pre")
    (run / "results.json").write_text(json.dumps({"config": to_dict(task_config("ecg", "hm", seeds=[0])),
                                                  "final_test_accuracy": [0.9]}))
    r = _invoke("compare", run / "results.json")
    assert r.exit_code == 0 and "| pre |" in r.stdout, r.output
