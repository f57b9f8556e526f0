"""Small synthetic image sets for the transfer-learning tests: class-dependent patterns, so a backbone
and heads can learn something in a few steps, with no dataset on disk."""
import numpy as np
import pytest
import torch

from ferristor.transfer_learning.images import ImageSet


def synthetic(n_per_class: int, classes: int, seed: int, shift: int = 0, side: int = 12) -> ImageSet:
    g = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        base = np.full((side, side), -1.0, np.float32)
        r = (c + shift) % side
        base[r, :] = 1.0  # a bright row per class
        base[:, (3 * c + shift) % side] = 0.5
        for _ in range(n_per_class):
            xs.append(np.clip(base + 0.3 * g.standard_normal((side, side)).astype(np.float32), -1, 1))
            ys.append(c)
    x = torch.from_numpy(np.stack(xs)).unsqueeze(1)
    y = torch.tensor(ys)
    perm = torch.from_numpy(g.permutation(len(y)))
    x, y = x[perm], y[perm]
    k = len(y) * 4 // 5
    return ImageSet(f"synthetic{seed}", x[:k].contiguous(), y[:k], x[k:].contiguous(), y[k:], classes)


@pytest.fixture
def source_images():
    return synthetic(60, 4, seed=1)


@pytest.fixture
def target_images():
    return synthetic(60, 3, seed=2, shift=5)


def write_folder(data: ImageSet, root, split_test: bool = True) -> None:
    """The images as PNG files in torchvision's ImageFolder layout (root/train/<class>/…, root/test/<class>/…)."""
    from PIL import Image
    splits = {"train": (data.x_train, data.y_train)}
    if split_test:
        splits["test"] = (data.x_test, data.y_test)
    for split, (x, y) in splits.items():
        for i, (img, label) in enumerate(zip(x, y)):
            folder = root / split / f"class{int(label)}"
            folder.mkdir(parents=True, exist_ok=True)
            arr = np.round((img[0].numpy() + 1) * 127.5).astype(np.uint8)
            Image.fromarray(arr, mode="L").save(folder / f"{i:05d}.png")


@pytest.fixture
def fig6_args(tmp_path):
    """``ferristor fig6`` on two small image folders: (args, out, pair), seconds to run."""
    write_folder(synthetic(40, 4, seed=1), tmp_path / "src")
    write_folder(synthetic(30, 3, seed=2, shift=5), tmp_path / "tgt", split_test=False)
    pair = f"folder:{tmp_path / 'src'}->folder:{tmp_path / 'tgt'}"
    out = tmp_path / "out"
    args = ["fig6", "--pairs", pair, "--arch", "lenet", "--input-size", "12", "--pretrain-epochs", "1", "--batch", "16",
            "--per-class", "21", "--folds", "3", "--heads", "fp-offline,hm", "--online-epochs", "1", "--decay-epoch",
            "0", "--offline-epochs", "2", "--lsb-grid", "2^-9", "--out", str(out), "--no-progress"]
    return args, out, pair
