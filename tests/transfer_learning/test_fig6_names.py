"""fig6's file names: sources and pairs whose readable names are alike ('folder:imgs/task_a' and
'folder:imgs/task/a', 'fashion-mnist[0-4]' and 'fashion-mnist[0,4]', names alike in their first 80
characters) had shared one backbone folder and one pair file: the second pair was refused halfway,
with advice that could not work. Names read alike keep their readable slug for the first and get a
short hash after it for the next; folders written before keep their names."""
import json

from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.transfer_learning.fig6 import slug, unique_paths

from .conftest import synthetic, write_folder


def test_names_that_slug_alike_get_paths_of_their_own(tmp_path):
    texts = ["fashion-mnist[0-4]", "fashion-mnist[0,4]", "a" * 85 + "x", "a" * 85 + "y", "mnist"]
    paths = unique_paths(tmp_path, texts, held=lambda p: None, suffix=".json")
    assert len(set(paths.values())) == len(texts)
    assert paths["fashion-mnist[0-4]"].name == "fashion-mnist-0-4.json"  # the first keeps its readable name
    assert paths["fashion-mnist[0,4]"].name.startswith("fashion-mnist-0-4-") and paths["mnist"].name == "mnist.json"
    # a name already there for another text is left to it, whatever the order now
    held = {tmp_path / "fashion-mnist-0-4.json": "fashion-mnist[0,4]"}
    again = unique_paths(tmp_path, texts, held=held.get, suffix=".json")
    assert again["fashion-mnist[0,4]"].name == "fashion-mnist-0-4.json"
    assert again["fashion-mnist[0-4]"] not in held


def test_two_sources_that_slug_alike_run_side_by_side(tmp_path):
    write_folder(synthetic(40, 4, seed=1), tmp_path / "imgs" / "task_a")
    write_folder(synthetic(40, 4, seed=3, shift=2), tmp_path / "imgs" / "task" / "a")
    write_folder(synthetic(30, 3, seed=2, shift=5), tmp_path / "tgt", split_test=False)
    a, b = (f"folder:{tmp_path / 'imgs' / name}->folder:{tmp_path / 'tgt'}" for name in ("task_a", "task/a"))
    assert slug(a) == slug(b)
    out = tmp_path / "out"
    args = ["fig6", "--arch", "lenet", "--input-size", "12", "--pretrain-epochs", "1", "--batch", "16",
            "--per-class", "21", "--folds", "3", "--heads", "fp-offline", "--offline-epochs", "2",
            "--out", str(out), "--no-progress"]
    r = CliRunner().invoke(cli, args + ["--pairs", f"{a},{b}"])
    assert r.exit_code == 0, r.output + r.stderr
    pairs = sorted((out / "pairs").iterdir())
    assert len(pairs) == 2 and len(list((out / "backbones").iterdir())) == 2
    assert {json.loads(p.read_text())["identity"]["pair"] for p in pairs} == {a, b}
    datasets = {json.loads((f / "pretrain.json").read_text())["identity"]["dataset"] for f in (out / "backbones").iterdir()}
    assert datasets == {a.split("->")[0], b.split("->")[0]}
    for order in (f"{b},{a}", b, a):  # read back, whichever order and whichever alone
        r = CliRunner().invoke(cli, args + ["--pairs", order])
        assert r.exit_code == 0, r.output + r.stderr
        assert r.output.count("done before") == order.count("->"), r.output
