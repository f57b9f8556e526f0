"""Datasets are checked at construction and against the network, never inside the kernels."""
import numpy as np
import pytest
import torch

from ferristor.data.registry import Dataset
from ferristor.data.validate import check_fits
from ferristor.errors import ConfigError, DataError


def _ds(n=20, features=4, classes=3, labels=None, x=None, **over):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, features, generator=g) if x is None else x
    y = torch.arange(n) % classes if labels is None else labels
    kw = dict(name="toy", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5], n_classes=classes)
    kw.update(over)
    return Dataset(**kw)


def test_labels_outside_n_classes_are_refused_at_construction():
    with pytest.raises(DataError, match=r"y_train labels span 1…10 but n_classes=10 \(allowed 0…9\)"):
        _ds(labels=torch.arange(20) % 10 + 1, classes=10)
    with pytest.raises(DataError, match="span -1…1"):
        _ds(labels=torch.arange(20) % 3 - 1)


@pytest.mark.parametrize("over, message", [
    ({"n_classes": 0}, "n_classes=0"),
    ({"n_classes": 2.5}, "n_classes=2.5"),
    ({"y_train": torch.zeros(19, dtype=torch.int64)}, "x_train has 20 samples but y_train has 19"),
    ({"y_train": torch.zeros(20, 1, dtype=torch.int64)}, r"shape \(20, 1\)"),
    ({"y_train": torch.zeros(20)}, "expected integer class labels"),
    ({"x_train": torch.zeros(20, 4, dtype=torch.uint8)}, "dtype torch.uint8, expected float32"),
    ({"x_train": torch.zeros(20)}, r"shape \(20,\), expected \(samples, features\)"),
    ({"x_train": torch.zeros(0, 4), "y_train": torch.zeros(0, dtype=torch.int64)}, "at least one sample"),
    ({"x_test": torch.zeros(5, 3)}, "x_train has 4 features but x_test has 3"),
    ({"x_train": torch.tensor([[0.0, float("nan"), 0, 0]] * 20)}, "20 non-finite values .first at sample 0, feature 1"),
    ({"y_test": [0, 1, 2, 0, 1]}, "y_test is a list"),
])
def test_malformed_datasets_name_what_is_wrong(over, message):
    with pytest.raises(DataError, match=message):
        _ds(**over)


@pytest.mark.parametrize("over, message", [
    # torch's TypeError "can't convert np.ndarray of type numpy.str_ / numpy.object_" had escaped
    ({"y_train": np.array(["N", "V", "A", "N"] * 5)}, r"y_train is text \(dtype <U1, e.g. 'N'\): expected integer class "
                                                     r"labels 0…n-1; number the classes first"),
    ({"x_train": np.zeros((20, 4)).astype(object)}, r"x_train is an array of dtype object .* holding float: expected "
                                                     r"numbers \(float32\); convert it with x.astype\(np.float32\)"),
    ({"y_train": np.array([0, 1, None, 2] * 5, dtype=object)}, r"y_train is an array of dtype object .* holding NoneType, "
                                                                r"int: expected integer class labels 0…n-1; convert, encode or drop"),
    ({"x_train": np.zeros((20, 4), dtype="datetime64[s]")}, r"x_train has dtype datetime64\[s\]: expected numbers"),
    # np.loadtxt reads a CSV's label column as float64: the fix is named, the labels never rounded silently
    ({"y_train": np.arange(20.0) % 3}, r"y_train has dtype torch.float64, expected integer class labels \(int64\); they "
                                      r"are whole numbers: convert them with y.astype\(int\) \(numpy\) or y.long\(\)"),
    ({"y_train": torch.full((20,), float("nan"))}, r"y_train has dtype torch.float32, .*; some are not whole numbers \(e.g. nan\)"),
])
def test_arrays_that_are_not_numbers_name_what_they_hold_and_the_fix(over, message):
    with pytest.raises(DataError, match=r"^dataset 'toy': " + message):
        _ds(**over)


def test_float64_inputs_and_narrow_integer_labels_are_cast_at_the_boundary():
    x = torch.randn(20, 4, dtype=torch.float64)
    ds = _ds(x=x, labels=(torch.arange(20) % 3).to(torch.uint8), y_test=np.array([0, 1, 2, 0, 1], dtype=np.int32))
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_test.dtype == torch.int64
    assert torch.equal(ds.x_train, x.float())


def test_check_fits_names_the_labels_and_the_outputs():
    ten = _ds(labels=torch.arange(20) % 10 + 1, classes=11)  # a dataset that says 11 classes, labels 1…10
    with pytest.raises(DataError, match=r"labels span 1…10 but the network has 10 outputs \(allowed 0…9\)"):
        check_fits(ten, (4, 8, 10), "softmax")
    digits = _ds(classes=10, labels=torch.arange(20) % 10)
    with pytest.raises(DataError, match=r"labels span 0…9 but the network has 5 outputs \(allowed 0…4\)"):
        check_fits(digits, (4, 8, 5), "softmax")
    with pytest.raises(DataError, match="has 10 classes but the network has 12 outputs"):
        check_fits(digits, (4, 8, 12), "softmax")
    with pytest.raises(ConfigError, match="an input size of 4"):
        check_fits(digits, (5, 8, 10), "softmax")
    with pytest.raises(DataError, match="sigmoid"):
        check_fits(_ds(classes=3), (4, 8, 1), "sigmoid")
    check_fits(digits, (4, 8, 10), "softmax")
    check_fits(_ds(classes=2), (4, 8, 1), "sigmoid")
