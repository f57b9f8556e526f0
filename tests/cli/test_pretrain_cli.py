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


def _weights(path, width: float = 1.0):
    import torch

    from ferristor.backbones.lenet import LeNet
    torch.save(LeNet(4, 1, 12, width).state_dict(), path)
    return path


def test_a_bad_weights_file_is_named_as_weights_before_any_folder_is_made(tmp_path):
    """'weights file … does not exist' had not named --weights and left an empty --out behind; a corrupt
    file's message had held a piece of torch's advice, cut mid-sentence."""
    _image_folder(tmp_path / "src")
    out = tmp_path / "pre"
    base = ["pretrain", "--dataset", f"folder:{tmp_path / 'src'}", "--arch", "lenet", "--input-size", "12",
            "--epochs", "1", "--batch", "16", "--out", str(out), "--no-progress"]
    (tmp_path / "cut.pth").write_bytes(b"\x80\x02 cut")
    cases = [(tmp_path / "absent.pth", f"error: --weights {tmp_path / 'absent.pth'}: no such file\n"),
             (tmp_path / "cut.pth", f"error: --weights {tmp_path / 'cut.pth'}: not a torch file of tensors that loads "
                                    f"(UnpicklingError): truncated, corrupt, or a pickled model rather than a "
                                    f"state_dict; save one with torch.save(model.state_dict(), path)\n"),
             (_weights(tmp_path / "narrow.pth", 0.5), None)]
    for weights, message in cases:
        r = CliRunner().invoke(cli, base + ["--weights", str(weights)])
        assert r.exit_code == 2, r.output
        if message:
            assert r.stderr == message
        else:
            assert r.stderr.startswith(f"error: --weights {weights}: does not fit this backbone")
        assert not out.exists()
    r = CliRunner().invoke(cli, base + ["--weights", str(_weights(tmp_path / "w.pth"))])
    assert r.exit_code == 0, r.output  # a good file passes


def test_fig6_names_a_bad_weights_file_or_folder_before_any_work(tmp_path):
    """fig6 had left an empty backbones/<source>/ folder behind, and a missing folder: target had been a
    DataError once its pair started, naming no option."""
    _image_folder(tmp_path / "src")
    out = tmp_path / "out"
    base = ["fig6", "--arch", "lenet", "--input-size", "12", "--pretrain-epochs", "1", "--batch", "16",
            "--per-class", "21", "--folds", "3", "--out", str(out), "--no-progress"]
    pair = f"folder:{tmp_path / 'src'}->folder:{tmp_path / 'src'}"
    r = CliRunner().invoke(cli, base + ["--pairs", pair, "--weights", str(tmp_path / "absent.pth")])
    assert r.exit_code == 2 and r.stderr == f"error: --weights {tmp_path / 'absent.pth'}: no such file\n"
    assert not out.exists()
    r = CliRunner().invoke(cli, base + ["--pairs", f"{pair},mnist->folder:/nonexistent"])
    assert r.exit_code == 2
    assert r.stderr == ("error: --pairs mnist->folder:/nonexistent: folder:/nonexistent: no such folder (folder:PATH "
                        "is a folder of class folders, PATH/<class>/<image>)\n")
    assert not out.exists()
    r = CliRunner().invoke(cli, base + ["--pairs", pair, "--weights", str(_weights(tmp_path / "narrow.pth", 0.5))])
    assert r.exit_code == 2 and "--weights" in r.stderr and "does not fit this backbone" in r.stderr
    assert not (out / "backbones").exists() or not any((out / "backbones").iterdir())


def test_a_missing_image_folder_is_named_as_dataset_before_any_folder_is_made(tmp_path):
    """'image folder … does not exist' had not named --dataset."""
    out = tmp_path / "pre"
    (tmp_path / "file").write_text("x")
    for path, why in ((tmp_path / "missing", "no such folder"), (tmp_path / "file", "not a folder")):
        r = CliRunner().invoke(cli, ["pretrain", "--dataset", f"folder:{path}", "--arch", "lenet", "--out", str(out),
                                     "--no-progress"])
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith(f"error: --dataset folder:{path}: {why} (folder:PATH is a folder of class folders")
        assert not out.exists()
