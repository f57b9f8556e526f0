"""Checks at the data boundary, so that no kernel ever sees a label or a shape it cannot hold.

The compiled kernels run without bounds checks: a label ≥ the network's outputs would be written
past a buffer, silently. Everything is therefore checked here, once, when a :class:`Dataset` is
built (:func:`check_dataset`) and when it meets a network (:func:`check_fits`), never per sample.

Conversions at the boundary (documented, lossless for the values ferristor uses):

* inputs of another floating dtype (float64, float16, bfloat16) are cast to float32, the dtype
  every pass runs in; integer inputs are refused (raw pixels want scaling first);
* labels of another integer dtype (uint8, int32, bool…) are cast to int64; float labels are refused;
* numpy arrays are taken as tensors.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataError

_FLOATS = (torch.float64, torch.float16, torch.bfloat16)


def _tensor(name: str, where: str, value) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise DataError(f"dataset {where}: {name} is a {type(value).__name__}, expected a torch tensor")
    return value


def _inputs(name: str, where: str, x) -> torch.Tensor:
    x = _tensor(name, where, x)
    if x.dtype in _FLOATS:
        x = x.to(torch.float32)
    elif x.dtype != torch.float32:
        raise DataError(f"dataset {where}: {name} has dtype {x.dtype}, expected float32 (scale integer inputs "
                        f"first, e.g. pixels to [-1, 1])")
    if x.dim() != 2:
        raise DataError(f"dataset {where}: {name} has shape {tuple(x.shape)}, expected (samples, features)")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"dataset {where}: {name} has shape {tuple(x.shape)}, expected at least one sample and one feature")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        raise DataError(f"dataset {where}: {name} holds {int(bad.sum())} non-finite values (first at sample {i}, "
                        f"feature {j}: {float(x[i, j])})")
    return x


def _labels(name: str, where: str, y) -> torch.Tensor:
    y = _tensor(name, where, y)
    if y.dtype.is_floating_point or y.dtype.is_complex:
        raise DataError(f"dataset {where}: {name} has dtype {y.dtype}, expected integer class labels (int64)")
    y = y.to(torch.int64)
    if y.dim() != 1:
        raise DataError(f"dataset {where}: {name} has shape {tuple(y.shape)}, expected one label per sample (samples,)")
    return y


def _span(y: torch.Tensor) -> tuple[int, int]:
    return int(y.min()), int(y.max())


def check_dataset(ds) -> None:
    """Validate (and convert, see the module doc) a Dataset's tensors in place; DataError if wrong."""
    where = repr(ds.name)
    if isinstance(ds.n_classes, bool) or not isinstance(ds.n_classes, (int, np.integer)) or ds.n_classes < 1:
        raise DataError(f"dataset {where}: n_classes={ds.n_classes!r}, expected an integer ≥ 1")
    ds.n_classes = int(ds.n_classes)
    ds.x_train, ds.x_test = _inputs("x_train", where, ds.x_train), _inputs("x_test", where, ds.x_test)
    ds.y_train, ds.y_test = _labels("y_train", where, ds.y_train), _labels("y_test", where, ds.y_test)
    for part in ("train", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        if len(x) != len(y):
            raise DataError(f"dataset {where}: x_{part} has {len(x)} samples but y_{part} has {len(y)} labels")
        lo, hi = _span(y)
        if lo < 0 or hi >= ds.n_classes:
            raise DataError(f"dataset {where}: y_{part} labels span {lo}…{hi} but n_classes={ds.n_classes} "
                            f"(allowed 0…{ds.n_classes - 1})")
    if ds.x_train.shape[1] != ds.x_test.shape[1]:
        raise DataError(f"dataset {where}: x_train has {ds.x_train.shape[1]} features but x_test has {ds.x_test.shape[1]}")


def check_fits(ds, sizes, output: str) -> None:
    """Refuse, naming the values, a dataset the network ``sizes`` with ``output`` cannot learn."""
    sizes = tuple(sizes)
    if ds.n_features != sizes[0]:
        raise ConfigError("network.sizes", sizes, f"an input size of {ds.n_features}, the features of dataset {ds.name!r}")
    if output == "sigmoid":
        if sizes[-1] != 1 or ds.n_classes != 2:
            raise DataError(f"dataset {ds.name!r}: {ds.n_classes} classes, but a sigmoid output of {sizes[-1]} unit(s) "
                            f"learns two classes, labels 0 and 1, with one unit")
    check_outputs(ds, sizes[-1], output)
    if output != "sigmoid" and ds.n_classes != sizes[-1]:
        raise DataError(f"dataset {ds.name!r} has {ds.n_classes} classes but the network has {sizes[-1]} outputs")


def check_outputs(ds, outputs: int, output: str = "softmax") -> None:
    """Refuse labels that a network with ``outputs`` output units cannot take (any model), naming the
    split (training or test labels) that holds them."""
    binary = output == "sigmoid" or outputs == 1
    hi_ok = 1 if binary else outputs - 1
    for split, y in (("training", ds.y_train), ("test", ds.y_test)):
        if not len(y):
            continue
        lo, hi = _span(y)
        if lo < 0 or hi > hi_ok:
            what = "one sigmoid output learns labels 0 and 1" if binary else \
                f"the network has {outputs} outputs (allowed 0…{outputs - 1})"
            raise DataError(f"dataset {ds.name!r}: {split} labels span {lo}…{hi} but {what}")
