"""ECG dataset (digest §4) on the real MIT-BIH files; skipped when they are absent."""
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from ferristor.data import ecg as ecg_mod
from ferristor.data.ecg import ECGConfig, beat_features, cache_key, extract_beats, split_indices
from ferristor.data.mitdb import locate_mitdb, read_record
from ferristor.errors import ConfigError, DataError

# Record 208's annotation file (data README): 2,955 beats.
BEATS_208 = {"N": 1586, "V": 992, "F": 373, "S": 2, "Q": 2}


def test_config_defaults_and_validation():
    c = ECGConfig()
    assert c.window_samples == 252 and c.n_features == 20  # 700 ms at 360 Hz, 2 × 10
    for bad in ({"edge": "wrap"}, {"test_record": "999"}, {"window_ms": 0}, {"n_fft_components": 0},
                {"n_fft_components": 200}, {"train_per_class": 1.5}, {"seed": -1}):
        with pytest.raises(ConfigError):
            ECGConfig(**bad)


def test_record_208_every_beat_under_pad(ecg_beats):
    in_208 = ecg_beats["records"] == "208"
    assert Counter(ecg_beats["symbols"][in_208].tolist()) == BEATS_208
    assert int(ecg_beats["labels"][in_208].sum()) == 2955 - 1586


def test_record_208_drop_policy_loses_the_two_edge_beats(mitdb_root, tmp_path, ecg_beats):
    # Beats at samples 46 (F) and 649,935 (N) of 650,000 have windows running past the edges.
    beats = extract_beats(mitdb_root / "mitdb", ["208"], ECGConfig(edge="drop"), tmp_path)
    assert Counter(beats["symbols"].tolist()) == {**BEATS_208, "N": 1585, "F": 372}
    # Interior beats get the same features whatever the edge policy.
    pad = ecg_beats["features"][ecg_beats["records"] == "208"]
    np.testing.assert_array_equal(beats["features"], pad[1:-1])


def test_features_are_fft_magnitudes_of_centred_windows():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(1000, 2))
    feats, keep = beat_features(signal, np.array([500, 3]), 252, 10, "drop")
    assert keep.tolist() == [True, False] and feats.shape == (1, 20)
    window = signal[500 - 126:500 + 126]
    expected = np.concatenate([np.abs(np.fft.fft(window[:, c]))[:10] for c in range(2)])
    np.testing.assert_allclose(feats[0], expected, rtol=1e-5)


def test_dataset_shapes_and_standardisation(ecg_dataset, ecg_beats):
    d = ecg_dataset
    assert d.name == "ecg" and d.n_classes == 2 and d.n_features == 20
    assert d.x_train.shape == (20000, 20) and d.x_test.shape == (2955, 20)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64 and d.y_test.dtype == torch.int64
    assert set(d.y_train.unique().tolist()) == {0, 1} and int(d.y_test.sum()) == 2955 - 1586
    torch.testing.assert_close(d.x_train.mean(0), torch.zeros(20), atol=1e-4, rtol=0)
    torch.testing.assert_close(d.x_train.std(0, unbiased=False), torch.ones(20), atol=1e-4, rtol=0)
    # The test set is scaled with the training statistics, not its own.
    train, test = split_indices(ecg_beats, ECGConfig())
    raw = ecg_beats["features"].astype(np.float64)
    mean, std = raw[train].mean(0), raw[train].std(0)
    np.testing.assert_allclose(d.x_test.numpy(), (raw[test] - mean) / std, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(d.x_test.mean(0), torch.zeros(20), atol=1e-2)


def test_train_is_balanced_excludes_208_and_follows_the_seed(ecg_beats):
    train, test = split_indices(ecg_beats, ECGConfig())
    assert len(np.unique(train)) == 20000
    assert not np.any(ecg_beats["records"][train] == "208")
    assert np.bincount(ecg_beats["labels"][train]).tolist() == [10000, 10000]
    assert np.all(ecg_beats["records"][test] == "208") and len(test) == 2955
    assert np.all(np.diff(test) > 0)  # the test record in time order
    again, _ = split_indices(ecg_beats, ECGConfig())
    other, _ = split_indices(ecg_beats, ECGConfig(seed=1))
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)
    # Shuffled: the classes interleave rather than arriving in two blocks.
    assert 0.3 < ecg_beats["labels"][train[:1000]].mean() < 0.7
    with pytest.raises(DataError, match="train_per_class"):
        split_indices(ecg_beats, ECGConfig(train_per_class=40000))


def test_cache_hit_returns_identical_arrays_without_reading(mitdb_root, ecg_cache, ecg_beats, monkeypatch):
    from ferristor.data.mitdb import RECORDS

    def no_read(*a, **k):
        raise AssertionError("records read despite a cache")
    monkeypatch.setattr(ecg_mod, "read_record", no_read)
    again = extract_beats(mitdb_root / "mitdb", RECORDS, ECGConfig(seed=7, train_per_class=5), ecg_cache)
    for k in ecg_beats:
        np.testing.assert_array_equal(again[k], ecg_beats[k])


def test_cache_key_follows_extraction_parameters_only(mitdb_root):
    folder = mitdb_root / "mitdb"
    key = cache_key(folder, ["208"], ECGConfig())
    assert key == cache_key(folder, ["208"], ECGConfig(seed=3, train_per_class=10))
    for changed in ({"window_ms": 500}, {"n_fft_components": 8}, {"edge": "drop"}):
        assert cache_key(folder, ["208"], ECGConfig(**changed)) != key
    assert cache_key(folder, ["207"], ECGConfig()) != key


def test_cache_key_follows_file_contents(mitdb_root, tmp_path):
    (tmp_path / "mitdb").mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb_root / "mitdb" / f"208.{ext}", tmp_path / "mitdb")
    key = cache_key(tmp_path / "mitdb", ["208"], ECGConfig())
    assert key == cache_key(mitdb_root / "mitdb", ["208"], ECGConfig())
    with open(tmp_path / "mitdb" / "208.atr", "r+b") as f:
        f.seek(100)
        f.write(b"\x00")
    assert cache_key(tmp_path / "mitdb", ["208"], ECGConfig()) != key


def test_corrupt_cache_is_rebuilt(mitdb_root, tmp_path):
    folder = mitdb_root / "mitdb"
    first = extract_beats(folder, ["208"], ECGConfig(), tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:1000])  # a truncated file, as a crash of a non-atomic writer leaves
    again = extract_beats(folder, ["208"], ECGConfig(), tmp_path)
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
    assert np.load(path)["features"].shape == (2955, 20)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_missing_data_names_where_it_looked(tmp_path, monkeypatch, mitdb_root):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "mitdb"))):
        locate_mitdb(tmp_path)
    (tmp_path / "mitdb").mkdir()
    for ext in ("hea", "atr"):
        shutil.copy(mitdb_root / "mitdb" / f"208.{ext}", tmp_path / "mitdb")
    with pytest.raises(DataError, match="208.dat"):
        locate_mitdb(tmp_path, records=["208"])
    # No data root and an empty cache: offline, so no download, and the message says why.
    with pytest.raises(DataError, match="FERRISTOR_OFFLINE"):
        locate_mitdb(None)
    with pytest.raises(DataError, match="mitdb"):
        from ferristor.data import load_dataset
        load_dataset("ecg", str(tmp_path))


def test_unreadable_record_is_a_data_error(tmp_path, mitdb_root):
    (tmp_path / "208.hea").write_text("not a header\n")
    shutil.copy(mitdb_root / "mitdb" / "208.atr", tmp_path)
    with pytest.raises(DataError, match="208"):
        read_record(tmp_path, "208")


def test_download_fallback_goes_through_a_temporary_folder(monkeypatch, mitdb_root):
    import wfdb

    from ferristor.data.sources import cache_root

    calls = []

    def fake_dl(db, dl_dir, records, annotators):
        calls.append((db, records, annotators))
        for r in records:
            for ext in ("hea", "dat", "atr"):
                shutil.copy(mitdb_root / "mitdb" / f"{r}.{ext}", dl_dir)

    monkeypatch.delenv("FERRISTOR_OFFLINE")
    monkeypatch.setattr(wfdb, "dl_database", fake_dl)
    folder = locate_mitdb(None, records=["208"])
    assert calls == [("mitdb", ["208"], ["atr"])] and folder == cache_root() / "mitdb"
    assert sorted(p.name for p in folder.iterdir()) == ["208.atr", "208.dat", "208.hea"]
    assert sorted(p.name for p in cache_root().iterdir()) == ["mitdb"]  # the temporary folder is gone
    assert locate_mitdb(None, records=["208"]) == folder and len(calls) == 1  # present now: no second fetch

    def failing_dl(db, dl_dir, records, annotators):
        (Path(dl_dir) / "100.hea").write_text("half")
        raise OSError("network unreachable")

    monkeypatch.setattr(wfdb, "dl_database", failing_dl)
    with pytest.raises(DataError, match="could not fetch"):
        locate_mitdb(None, records=["100"])
    assert not (folder / "100.hea").exists()
