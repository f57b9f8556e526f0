"""``ferristor pretrain`` at the command line."""
import numpy as np
from click.testing import CliRunner

from ferristor.cli.main import cli


def _image_folder(root, per_class: int = 40, classes: int = 4) -> None:
    """A small ImageFolder (root/train/<class>/…, root/test/<class>/…): a bright row per class, noise."""
    from PIL import Image
    g = np.random.default_rng(1)
    for split, n in (("train", per_class), ("test", per_class // 4)):
        for c in range(classes):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                a = g.integers(0, 80, (12, 12)).astype(np.uint8)
                a[3 * c] = 255
                Image.fromarray(a, mode="L").save(root / split / f"c{c}" / f"{i}.png")


def test_a_finished_folder_is_said_to_be_read_back_not_trained(tmp_path):
    """A rerun on a finished --out had printed the training log again, as if it had trained."""
    _image_folder(tmp_path / "src")
    out = tmp_path / "pre"
    args = ["pretrain", "--dataset", f"folder:{tmp_path / 'src'}", "--arch", "lenet", "--input-size", "12",
            "--epochs", "1", "--batch", "16", "--out", str(out), "--no-progress"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "epoch 1.00: loss" in first.output and "done before" not in first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"done before, read from {out}: pretrained 1 epoch, test ")
    assert "epoch 1.00: loss" not in again.output and "s on 1 thread(s)" not in again.output
    assert first.output.splitlines()[-1] == again.output.splitlines()[-1]  # the same backbone
