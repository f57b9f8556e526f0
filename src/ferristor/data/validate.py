"""Checks at the data boundary, so that no kernel ever sees a label or a shape it cannot hold.

The compiled kernels run without bounds checks: a label ≥ the network's outputs would be written
past a buffer, silently. Everything is therefore checked here, once, when a :class:`Dataset` is
built (:func:`check_dataset`) and when it meets a network (:func:`check_fits`), never per sample.

Conversions at the boundary (documented, lossless for the values ferristor uses):

* inputs of another floating dtype (float64, float16, bfloat16) are cast to float32, the dtype
  every pass runs in; integer inputs are refused (raw pixels want scaling first);
* labels of another integer dtype (uint8, int32, bool…) are cast to int64 (``fit`` refuses bools at its
  own boundary: its labels are never converted); float labels are refused,
  never rounded (whole-number floats, what ``np.loadtxt`` gives, get the fix in the message:
  ``y.astype(int)`` / ``y.long()``);
* numpy arrays are taken as tensors; arrays of text or of Python objects (what pandas gives for a
  column of mixed or non-numeric values) are refused, naming what they hold (:func:`numeric_tensor`).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataError

_FLOATS = (torch.float64, torch.float16, torch.bfloat16)


_NUMERIC_KINDS = "biufc"  # numpy dtype kinds torch takes: bool, integers, floats, complex (refused later, by name)


def numeric_tensor(value, what: str, labels: bool) -> torch.Tensor:
    """``value`` — a tensor, a numpy array, a pandas DataFrame or Series, or nested lists of numbers —
    as a tensor; a DataError naming ``what`` (``train_data labels (y)``), what it holds and what is
    allowed where it is text, Python objects (pandas' dtype object) or samples of different lengths:
    never torch's or numpy's own conversion error."""
    if isinstance(value, torch.Tensor):
        return value
    if not isinstance(value, np.ndarray) and hasattr(value, "to_numpy"):  # pandas
        value = value.to_numpy()
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as e:  # nested lists of different lengths
        raise DataError(f"{what} cannot be read as one array ({e}): expected "
                        + ("one label per sample" if labels else "samples of one shape (pad or crop them first)")) from None
    if a.dtype.kind in _NUMERIC_KINDS:  # (np.ascontiguousarray would make a 0-d label 1-d)
        return torch.from_numpy(a if a.flags.c_contiguous and a.flags.writeable else a.copy())
    expected = "integer class labels 0…n-1" if labels else "numbers (float32)"
    if a.dtype.kind in "US" or (a.dtype.kind == "O" and a.size and all(isinstance(v, (str, bytes)) for v in a.flat)):
        first = next(iter(a.flat), "")
        first = first.item() if isinstance(first, np.generic) else first
        fix = ("number the classes first, e.g. names, y = np.unique(y, return_inverse=True) (names[i] is class i)"
               if labels else "encode or drop the text first")
        raise DataError(f"{what} is text (dtype {a.dtype}, e.g. {first!r}): expected {expected}; {fix}")
    if a.dtype.kind == "O":
        held = sorted({type(v).__name__ for v in a.flat})
        numbers = all(isinstance(v, (int, float, np.number, bool, np.bool_)) for v in a.flat)
        if numbers and labels and all(float(v).is_integer() for v in a.flat):
            fix = "convert it with y.astype(int)"
        elif numbers and labels:
            fix = "a class label is a whole number, one per class"
        elif numbers:
            fix = "convert it with x.astype(np.float32)"
        else:
            fix = "convert, encode or drop the values that are not numbers first"
        raise DataError(f"{what} is an array of dtype object (what pandas gives for a column of mixed or non-numeric "
                        f"values) holding {', '.join(held) or 'nothing'}: expected {expected}; {fix}")
    raise DataError(f"{what} has dtype {a.dtype}: expected {expected}")


def _tensor(name: str, where: str, value) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = numeric_tensor(value, f"dataset {where}: {name}", labels=name.startswith("y"))
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
        raise DataError(f"dataset {where}: {name} has dtype {y.dtype}, expected integer class labels (int64); "
                        + _float_label_fix(y))
    y = y.to(torch.int64)
    if y.dim() != 1:
        raise DataError(f"dataset {where}: {name} has shape {tuple(y.shape)}, expected one label per sample (samples,)")
    return y


def _float_label_fix(y: torch.Tensor) -> str:
    """What to do with float labels: the conversion, where they are whole numbers (``np.loadtxt``
    reads a CSV's class column as float64); never done here, as a 0.5 rounded would be a wrong class."""
    if not y.dtype.is_complex and bool(torch.isfinite(y).all()) and bool((y == y.round()).all()):
        return "they are whole numbers: convert them with y.astype(int) (numpy) or y.long() (torch)"
    bad = y[~(torch.isfinite(y) & (y == y.round()))] if not y.dtype.is_complex else y
    return (f"some are not whole numbers (e.g. {bad.flatten()[0].item()!r}): a class label is an integer 0…n-1, "
            "one per class")


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
