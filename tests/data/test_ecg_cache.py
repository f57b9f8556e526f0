"""The ECG features' cache: one that cannot be written warns and the run goes on with the features it
computed; one holding non-finite values is named and rebuilt. On the fake MIT-BIH database
(tests/data/conftest.py)."""
import errno

import numpy as np
import pytest

from ferristor.data import ecg as ecg_mod
from ferristor.data.ecg import ECGConfig, cache_key, extract_beats
from ferristor.data.sources import cache_root
from ferristor.errors import FerristorWarning

TEST = "208"


def test_a_cache_that_cannot_be_written_warns_and_keeps_the_features(monkeypatch, fake_mitdb, tmp_path):
    want = extract_beats(fake_mitdb.folder, [TEST], ECGConfig(), tmp_path / "good")

    def read_only(path, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(ecg_mod, "atomic_write", read_only)
    path = cache_root() / "features" / f"mitdb-{cache_key(fake_mitdb.folder, [TEST], ECGConfig())}.npz"
    with pytest.warns(FerristorWarning) as caught:
        got = extract_beats(fake_mitdb.folder, [TEST], ECGConfig())  # the cache under FERRISTOR_CACHE
    assert [str(w.message) for w in caught] == [
        f"the ECG features were not cached: {path} could not be written (Read-only file system); set "
        f"FERRISTOR_CACHE to a writable folder to skip reading the records next time"]
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    assert not path.exists()
    # a cache folder passed by the caller is the caller's to fix, not FERRISTOR_CACHE
    with pytest.warns(FerristorWarning, match=r"could not be written \(Read-only file system\); pass a writable "
                                              r"cache_dir to skip"):
        extract_beats(fake_mitdb.folder, [TEST], ECGConfig(), tmp_path / "other")


def test_a_cache_holding_nan_is_rebuilt_with_a_warning_naming_the_file(fake_mitdb, tmp_path):
    first = extract_beats(fake_mitdb.folder, [TEST], ECGConfig(), tmp_path)
    (path,) = tmp_path.glob("mitdb-*.npz")
    damaged = dict(first, features=first["features"].copy())
    damaged["features"][3, 5] = np.nan
    damaged["features"][7, 0] = np.inf
    with open(path, "wb") as f:
        np.savez(f, **damaged)
    with pytest.warns(FerristorWarning) as caught:
        again = extract_beats(fake_mitdb.folder, [TEST], ECGConfig(), tmp_path)
    assert [str(w.message) for w in caught] == [
        f"the ECG feature cache {path} holds 2 non-finite value(s), so it is damaged: the features are "
        f"extracted again from the records to replace it"]
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
    assert np.isfinite(np.load(path)["features"]).all()  # replaced: the next run reads it without a word
