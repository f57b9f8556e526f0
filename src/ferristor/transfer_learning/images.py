"""Image datasets for transfer learning: ferristor's (MNIST, Fashion-MNIST, or a subset of their
classes), a folder of image files, or a torch Dataset — all as ``ImageSet`` (images (N, C, H, W)
float32 in [−1, 1], labels int64).

Names (``resolve``): ``mnist``, ``fashion-mnist``, a class subset ``fashion-mnist[5-9]`` or
``mnist[0,2,4]`` (labels renumbered 0…k−1 in the order given), or ``folder:PATH``: a folder laid out as
torchvision's ``ImageFolder`` (``PATH/<class>/<image>``), optionally split as ``PATH/train/<class>/…``
and ``PATH/test/<class>/…``. Image files are read with Pillow (the ``images`` extra).
"""
from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, FerristorWarning

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
_SUBSET = re.compile(r"^(?P<name>[a-z-]+)\[(?P<classes>[0-9,\- ]+)\]$")


@dataclass
class ImageSet:
    name: str
    x_train: torch.Tensor  # (N, C, H, W) float32 in [−1, 1]
    y_train: torch.Tensor  # (N,) int64 in [0, n_classes)
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    def __post_init__(self):
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.dim() != 4 or x.dtype != torch.float32:
                raise DataError(f"{self.name}: {split} images must be float32 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
            if len(x) != len(y):
                raise DataError(f"{self.name}: {len(x)} {split} images but {len(y)} labels")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise DataError(f"{self.name}: {split} labels outside [0, {self.n_classes})")
        if self.x_test.numel() and self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise DataError(f"{self.name}: test images {tuple(self.x_test.shape[1:])} differ from train {tuple(self.x_train.shape[1:])}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.x_train.shape[1:])

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for t in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(f"{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()


def parse_classes(text: str) -> list[int]:
    """'0-4' → [0, 1, 2, 3, 4]; '0,2,7' → [0, 2, 7]."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()) or int(a) > int(b):
                raise ConfigError("dataset classes", text, "a list of classes such as 0-4 or 0,2,7")
            out += range(int(a), int(b) + 1)
        elif part.isdigit():
            out.append(int(part))
        else:
            raise ConfigError("dataset classes", text, "a list of classes such as 0-4 or 0,2,7")
    if not out or len(set(out)) != len(out):
        raise ConfigError("dataset classes", text, "distinct classes such as 0-4 or 0,2,7")
    if len(out) < 2:  # one class: every model scores 100 %, a result that means nothing
        raise ConfigError("dataset classes", text, "at least two classes to tell apart, such as 0-4 or 0,2,7")
    return out


def subset(data: ImageSet, classes: list[int], name: str | None = None) -> ImageSet:
    """Only ``classes``, relabelled 0…k−1 in the order given."""
    bad = [c for c in classes if c >= data.n_classes]
    if bad:
        raise ConfigError("dataset classes", bad, f"classes of {data.name} (0…{data.n_classes - 1})")
    lut = torch.full((data.n_classes,), -1, dtype=torch.int64)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    keep_tr, keep_te = lut[data.y_train] >= 0, lut[data.y_test] >= 0
    return ImageSet(name or f"{data.name}[{','.join(map(str, classes))}]", data.x_train[keep_tr], lut[data.y_train[keep_tr]],
                    data.x_test[keep_te], lut[data.y_test[keep_te]], len(classes))


def from_ferristor(name: str, data_dir: str | None = None) -> ImageSet:
    from ..data.registry import load_dataset
    if name not in ("mnist", "fashion-mnist"):
        raise ConfigError("dataset", name, "'mnist', 'fashion-mnist', a class subset such as 'fashion-mnist[0-4]', or folder:PATH")
    d = load_dataset(name, data_dir)
    return ImageSet(name, d.x_train.reshape(-1, 1, 28, 28), d.y_train, d.x_test.reshape(-1, 1, 28, 28), d.y_test, d.n_classes)


def _to_image_tensor(img) -> torch.Tensor:
    """A PIL image or a tensor/array (C, H, W) or (H, W) → float32 (C, H, W) in [−1, 1]
    (uint8 arrays and PIL images are 0…255; float tensors are taken as they are)."""
    if hasattr(img, "convert") and hasattr(img, "mode"):  # PIL image
        arr = np.asarray(img.convert("L" if img.mode in ("L", "1", "I", "I;16", "F") else "RGB"))
        t = torch.from_numpy(arr.astype(np.float32)) / 127.5 - 1.0
        return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()
    t = torch.as_tensor(np.asarray(img) if not isinstance(img, torch.Tensor) else img)
    if t.dtype == torch.uint8:
        t = t.float() / 127.5 - 1.0
    t = t.float()
    return t.unsqueeze(0) if t.dim() == 2 else t


def _scaled_here(img) -> bool:
    """Whether ``_to_image_tensor`` scales ``img`` itself (a PIL image, uint8): else taken as it is."""
    return (hasattr(img, "convert") and hasattr(img, "mode")) or \
        (img.dtype == torch.uint8 if isinstance(img, torch.Tensor) else np.asarray(img).dtype == np.uint8)


def _warn_unit_range(name: str, floats: list[torch.Tensor]) -> None:
    """Float images are taken as they are, in [−1, 1] (background −1, the value ``pad`` fills with):
    a set whose every float value lies in [0, 1] is most likely torchvision's ToTensor output."""
    if not floats:
        return
    lo, hi = min(float(t.min()) for t in floats if t.numel()), max(float(t.max()) for t in floats if t.numel())
    if 0.0 <= lo and hi <= 1.0:
        warnings.warn(FerristorWarning(
            f"{name}: every float pixel lies in [0, 1] (seen {lo:.3g}…{hi:.3g}), as torchvision's ToTensor gives, but "
            f"float images are taken as they are, in [−1, 1] (background −1, the padding value): scale them with "
            f"x * 2 - 1 (transforms.Normalize(0.5, 0.5)) before from_torch_dataset"), stacklevel=3)


def from_torch_dataset(train, test=None, name: str = "custom") -> ImageSet:
    """An ImageSet from torch Datasets of (image, label) pairs: image a PIL image, a uint8 array
    (0…255) or a float tensor (C, H, W) already scaled [I: to [−1, 1], as the paper's pixels]; float
    images all in [0, 1] (torchvision's ToTensor) are taken as they are, with a warning."""
    floats: list[torch.Tensor] = []

    def read(ds, split):
        if ds is None:
            return torch.zeros(0, 1, 1, 1), torch.zeros(0, dtype=torch.int64)
        if len(ds) == 0:
            raise DataError(f"{name}: the {split} dataset is empty")
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        imgs = [_to_image_tensor(x) for x in xs]
        floats.extend(t for t, x in zip(imgs, xs) if not _scaled_here(x))
        shapes = {tuple(i.shape) for i in imgs}
        if len(shapes) > 1:
            raise DataError(f"{name}: {split} images of several shapes {sorted(shapes)[:3]}; resize them to one")
        ys = [int(y) for y in ys]
        return torch.stack(imgs), torch.tensor(ys, dtype=torch.int64)
    xtr, ytr = read(train, "train")
    xte, yte = read(test, "test")
    _warn_unit_range(name, floats)
    if test is None:
        xte = xtr[:0]
    n = int(max(ytr.max(), yte.max() if len(yte) else 0)) + 1
    return ImageSet(name, xtr, ytr, xte, yte, n)


def _folder_split(root: Path, known: list[str] | None = None) -> tuple[list[tuple[Path, int]], list[str]]:
    """(file, class index) pairs and the class names; with ``known`` (the training split's classes),
    indices are those of ``known`` and unknown class folders are refused."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} holds no class folders (expected {root}/<class>/<image>)")
    if known is not None:
        extra = [c for c in classes if c not in known]
        if extra:
            raise DataError(f"{root} holds classes the training split lacks: {', '.join(extra[:5])}")
        classes = known
    files = [(f, i) for i, c in enumerate(classes) if (root / c).is_dir() for f in sorted((root / c).rglob("*"))
             if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"{root} holds no image files ({', '.join(IMAGE_SUFFIXES[:4])}, …)")
    return files, classes


def from_folder(path: str | Path, name: str | None = None) -> ImageSet:
    """A folder in torchvision's ImageFolder layout (module doc), read with Pillow."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("dataset", f"folder:{root}", reason="reading image files needs Pillow: pip install 'ferristor[images]'") from None

    def load(files):
        imgs = []
        for f, _ in files:
            try:
                with Image.open(f) as im:
                    imgs.append(_to_image_tensor(im))
            except OSError as e:
                raise DataError(f"{f} cannot be read as an image ({e})") from None
        shapes = {tuple(i.shape) for i in imgs}
        if len(shapes) > 1:
            raise DataError(f"{root}: images of several sizes or modes {sorted(shapes)[:3]}; resize them to one")
        return torch.stack(imgs), torch.tensor([c for _, c in files], dtype=torch.int64)

    if (root / "train").is_dir():
        train, classes = _folder_split(root / "train")
        if (root / "test").is_dir():
            test, _ = _folder_split(root / "test", classes)
        else:
            test = []
    else:
        (train, classes), test = _folder_split(root), []
    xtr, ytr = load(train)
    xte, yte = load(test) if test else (xtr[:0], ytr[:0])
    return ImageSet(name or root.name, xtr, ytr, xte, yte, len(classes))


def check_name(spec: str) -> None:
    """Refuse a malformed name (module doc) before any data is read; a folder is read by ``resolve``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("dataset", spec, "'mnist', 'fashion-mnist', 'fashion-mnist[0-4]' or folder:PATH")
    if spec.startswith("folder:"):
        return
    m = _SUBSET.match(spec)
    name = m["name"] if m else spec
    if name not in ("mnist", "fashion-mnist"):  # 10 classes each
        raise ConfigError("dataset", spec, "'mnist', 'fashion-mnist', a class subset such as 'fashion-mnist[0-4]', or folder:PATH")
    if m:
        try:
            classes = parse_classes(m["classes"])
        except ConfigError:
            raise ConfigError("dataset", spec, "a class subset such as 'fashion-mnist[0-4]' or 'mnist[0,2,7]'") from None
        if max(classes) > 9:
            raise ConfigError("dataset", spec, f"classes of {name} (0…9), e.g. '{name}[0-4]'")


def resolve(spec: str, data_dir: str | None = None) -> ImageSet:
    """An ImageSet from a name (module doc)."""
    check_name(spec)
    if spec.startswith("folder:"):
        root = Path(spec[len("folder:"):])
        if not root.is_dir():  # named as the caller's option (--dataset), before any folder is made
            raise ConfigError("dataset", spec, reason=f"{'no such folder' if not root.exists() else 'not a folder'} "
                              "(folder:PATH is a folder of class folders, PATH/<class>/<image>)")
        return from_folder(root)
    m = _SUBSET.match(spec)
    if m:
        return subset(from_ferristor(m["name"], data_dir), parse_classes(m["classes"]), spec)
    return from_ferristor(spec, data_dir)
