"""Fashion-MNIST through the IDX loader and the checksum flow, on small gz files written in the real
format (tests/data/conftest.py). They cannot match Fashion-MNIST's md5s, so they run under a FileSet
of their own (same folder, names and reader, the fixture's md5s); the production table is shown to
reject them, and the real files need the full dataset."""
import gzip
import hashlib
import re
import shutil

import numpy as np
import pytest
import torch

from ferristor.data import load_dataset
from ferristor.data.idx import read_idx
from ferristor.data.registry import _IDX_NAMES, FASHION_FILES, _load_idx
from ferristor.data.sources import FileSet, RemoteFile, cache_root, locate
from ferristor.errors import DataError


def fixture_files(fake, mirrors=()) -> FileSet:
    """Fashion-MNIST's file set with the fixture's md5s in place of the originals'."""
    return FileSet(folder=FASHION_FILES.folder,
                   files=tuple(RemoteFile(f.name, fake.md5[f.name], tuple(mirrors)) for f in FASHION_FILES.files))


def _copy(fake, root):
    shutil.copytree(fake.folder, root / "fashion-mnist")
    return root / "fashion-mnist"


def test_fixture_loads_through_the_registry_reader(fake_fashion):
    d = _load_idx("fashion-mnist", fixture_files(fake_fashion))(str(fake_fashion.root))
    a = fake_fashion.arrays
    assert d.name == "fashion-mnist" and d.n_classes == 10 and d.n_features == 784
    assert d.x_train.shape == (40, 784) and d.x_test.shape == (20, 784) and d.x_train.dtype == torch.float32
    assert d.x_train.min() == -1.0 and d.x_train.max() == 1.0  # pixels 0…255 → [−1, 1]
    for x, images in ((d.x_train, a["train-images-idx3-ubyte.gz"]), (d.x_test, a["t10k-images-idx3-ubyte.gz"])):
        np.testing.assert_array_equal(x.numpy(), images.reshape(len(images), -1).astype(np.float32) / 127.5 - 1)
    assert d.y_train.dtype == torch.int64
    assert d.y_train.tolist() == a["train-labels-idx1-ubyte.gz"].tolist()
    assert d.y_test.tolist() == a["t10k-labels-idx1-ubyte.gz"].tolist()


def test_the_production_checksums_reject_the_fixture(fake_fashion):
    listed = "; ".join(f"{f.name} (md5 {fake_fashion.md5[f.name]}, expected {f.md5})" for f in FASHION_FILES.files)
    with pytest.raises(DataError, match=re.escape(f"fashion-mnist in {fake_fashion.folder}: 4 corrupt file(s): {listed}. ")):
        load_dataset("fashion-mnist", str(fake_fashion.root))


def test_an_explicit_root_lacking_a_file_is_an_error_not_a_fallback(fake_fashion, tmp_path):
    files = fixture_files(fake_fashion)
    _copy(fake_fashion, cache_root())  # a good copy in the cache must not be used instead
    (_copy(fake_fashion, tmp_path) / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz not found in .*fashion-mnist.*drop --data-dir"):
        locate(files, tmp_path)


def test_a_corrupt_file_is_detected(fake_fashion, tmp_path):
    d = _copy(fake_fashion, tmp_path)
    raw = bytearray((d / "train-labels-idx1-ubyte.gz").read_bytes())
    raw[-5] ^= 0xFF
    (d / "train-labels-idx1-ubyte.gz").write_bytes(bytes(raw))
    name, want = "train-labels-idx1-ubyte.gz", fake_fashion.md5["train-labels-idx1-ubyte.gz"]
    with pytest.raises(DataError, match=re.escape(f"1 corrupt file(s): {name} (md5 {hashlib.md5(raw).hexdigest()}, "
                                                  f"expected {want}). ")):
        locate(fixture_files(fake_fashion), tmp_path)


def test_the_user_cache_is_used_without_a_data_root(fake_fashion):
    files = fixture_files(fake_fashion)
    with pytest.raises(DataError, match=r"fashion-mnist: files not found; looked in cache \(.*\)\. Pass --data-dir"):
        locate(files)  # offline, no package ships Fashion-MNIST, and the cache is empty
    _copy(fake_fashion, cache_root())
    paths = locate(files)
    assert sorted(paths) == sorted(_IDX_NAMES) and all(p.parent == cache_root() / "fashion-mnist" for p in paths.values())
    assert _load_idx("fashion-mnist", files)(None).x_test.shape == (20, 784)


def test_a_download_skips_a_bad_mirror_and_lands_verified_in_the_cache(fake_fashion, tmp_path, monkeypatch):
    bad = _copy(fake_fashion, tmp_path / "bad")
    for name in _IDX_NAMES:  # a mirror serving other bytes under the right names
        (bad / name).write_bytes(b"not the file")
    files = fixture_files(fake_fashion, mirrors=(bad.as_uri(), fake_fashion.folder.as_uri()))
    monkeypatch.delenv("FERRISTOR_OFFLINE")
    paths = locate(files)
    dest = cache_root() / "fashion-mnist"
    assert sorted(p.name for p in dest.iterdir()) == sorted(_IDX_NAMES)  # no .part file left behind
    for name, p in paths.items():
        assert p == dest / name and p.read_bytes() == (fake_fashion.folder / name).read_bytes()
    # Present now: found in the cache, no mirror asked (none of these exists).
    gone = fixture_files(fake_fashion, mirrors=((tmp_path / "nowhere").as_uri(),))
    assert locate(gone) == paths


def test_a_download_with_no_good_mirror_fails_and_leaves_nothing(fake_fashion, tmp_path, monkeypatch):
    bad = _copy(fake_fashion, tmp_path / "bad")
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"truncated")
    files = fixture_files(fake_fashion, mirrors=(bad.as_uri(), (tmp_path / "nowhere").as_uri()))
    monkeypatch.delenv("FERRISTOR_OFFLINE")
    with pytest.raises(DataError, match="download failed: .*bad/fashion-mnist/train-images-idx3-ubyte.gz: checksum mismatch"
                                        ".*nowhere/train-images-idx3-ubyte.gz"):
        locate(files)
    assert list((cache_root() / "fashion-mnist").iterdir()) == []


def test_offline_never_downloads(fake_fashion):
    files = fixture_files(fake_fashion, mirrors=(fake_fashion.folder.as_uri(),))
    with pytest.raises(DataError, match="files not found"):
        locate(files)
    assert not (cache_root() / "fashion-mnist").exists()


@pytest.mark.parametrize("content, message", [
    (None, "not a readable gzip file"),
    (b"\x00\x00", "truncated IDX header"),
    (b"\x00\x00\x0d\x01" + b"\x00" * 8, r"not an IDX file of unsigned bytes \(magic 00000d01\)"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03" + b"\x01" * 5, r"IDX header says \(2, 3\) but holds 5 values"),
])
def test_a_malformed_idx_file_is_a_data_error(tmp_path, content, message):
    path = tmp_path / "x.gz"
    if content is None:
        path.write_bytes(b"plain bytes, no gzip")
    else:
        with gzip.open(path, "wb") as f:
            f.write(content)
    with pytest.raises(DataError, match=message):
        read_idx(path)


def test_a_malformed_file_passing_its_checksum_fails_in_the_reader(fake_fashion, tmp_path):
    d = _copy(fake_fashion, tmp_path)
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x14" + b"\x01" * 19)  # says 20 labels, holds 19
    files = fixture_files(fake_fashion)
    files = FileSet(files.folder, tuple(RemoteFile(f.name, hashlib.md5((d / f.name).read_bytes()).hexdigest()) for f in files.files))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: IDX header says"):
        _load_idx("fashion-mnist", files)(str(tmp_path))


@pytest.mark.full_data("fashion-mnist")
def test_the_original_files_pass_the_production_checksums(full_fashion):
    d = load_dataset("fashion-mnist", str(full_fashion))
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.y_train.bincount().tolist() == [6000] * 10 and d.y_test.bincount().tolist() == [1000] * 10
