"""ECG dataset (digest §4). Every path runs on a fake MIT-BIH database written with wfdb (48 small
records, tests/data/conftest.py); the beat counts of the real record 208 need the full database."""
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from ferristor.data import ecg as ecg_mod
from ferristor.data import load_dataset
from ferristor.data.ecg import ECGConfig, beat_features, cache_key, extract_beats, load_ecg, split_indices
from ferristor.data.mitdb import RECORDS, locate_mitdb, read_record
from ferristor.errors import ConfigError, DataError

# Record 208's annotation file (data README): 2,955 beats.
BEATS_208 = {"N": 1586, "V": 992, "F": 373, "S": 2, "Q": 2}
TEST = "208"


def test_config_defaults_and_validation():
    c = ECGConfig()
    assert c.window_samples == 252 and c.n_features == 20  # 700 ms at 360 Hz, 2 × 10
    for bad in ({"edge": "wrap"}, {"test_record": "999"}, {"window_ms": 0}, {"n_fft_components": 0},
                {"n_fft_components": 200}, {"train_per_class": 1.5}, {"seed": -1}, {"feature_scaling": "minmax"}):
        with pytest.raises(ConfigError):
            ECGConfig(**bad)


def test_features_are_fft_magnitudes_of_centred_windows():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(1000, 2))
    feats, keep = beat_features(signal, np.array([500, 3]), 252, 10, "drop")
    assert keep.tolist() == [True, False] and feats.shape == (1, 20)
    window = signal[500 - 126:500 + 126]
    expected = np.concatenate([np.abs(np.fft.fft(window[:, c]))[:10] for c in range(2)])
    np.testing.assert_allclose(feats[0], expected, rtol=1e-5)


# ------------------------------------------------------------------------- the fake database


def test_read_record_keeps_the_beats_and_drops_other_marks(fake_mitdb):
    rec = read_record(fake_mitdb.folder, TEST)
    samples, symbols = fake_mitdb.beats(TEST)
    assert len(symbols) < len(fake_mitdb.symbols[TEST])  # the fixture holds '+' and '~' marks too
    np.testing.assert_array_equal(rec.beat_samples, samples)
    np.testing.assert_array_equal(rec.beat_symbols, symbols)
    np.testing.assert_array_equal(rec.beat_labels, (symbols != "N").astype(np.int8))
    # Physical units: (digital − baseline) / gain, as wfdb writes and reads format 212.
    expected = (fake_mitdb.signals[TEST].astype(np.float64) - fake_mitdb.baseline) / fake_mitdb.gain
    np.testing.assert_allclose(rec.signal, expected, atol=1e-9)


def test_pad_keeps_every_beat_and_drop_loses_the_two_edge_beats(fake_mitdb, fake_beats, tmp_path):
    _, symbols = fake_mitdb.beats(TEST)
    in_test = fake_beats["records"] == TEST
    assert Counter(fake_beats["symbols"][in_test].tolist()) == Counter(symbols.tolist())
    dropped = extract_beats(fake_mitdb.folder, [TEST], ECGConfig(edge="drop"), tmp_path)
    # The fixture puts an F beat and an N beat within half a window of the record's edges.
    assert Counter(dropped["symbols"].tolist()) == Counter(symbols[1:-1].tolist())
    assert symbols[0] == "F" and symbols[-1] == "N"
    np.testing.assert_array_equal(dropped["features"], fake_beats["features"][in_test][1:-1])


def test_dataset_through_the_registry(fake_mitdb, fake_beats):
    """load_dataset('ecg') on the fake database with the default config: 10,000 beats per class."""
    d = load_dataset("ecg", str(fake_mitdb.root))
    _, test_symbols = fake_mitdb.beats(TEST)
    n_test, n_test_abnormal = len(test_symbols), int(np.sum(test_symbols != "N"))
    assert d.name == "ecg" and d.n_classes == 2 and d.n_features == 20
    assert d.x_train.shape == (20000, 20) and d.x_test.shape == (n_test, 20)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64 and d.y_test.dtype == torch.int64
    assert d.y_train.bincount().tolist() == [10000, 10000] and int(d.y_test.sum()) == n_test_abnormal
    torch.testing.assert_close(d.x_train.mean(0), torch.zeros(20), atol=1e-4, rtol=0)
    torch.testing.assert_close(d.x_train.std(0, unbiased=False), torch.ones(20), atol=1e-4, rtol=0)
    # The test set is scaled with the training statistics, not its own.
    train, test = split_indices(fake_beats, ECGConfig())
    raw = fake_beats["features"].astype(np.float64)
    mean, std = raw[train].mean(0), raw[train].std(0)
    np.testing.assert_allclose(d.x_test.numpy(), (raw[test] - mean) / std, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(d.x_test.mean(0), torch.zeros(20), atol=1e-2)


def test_features_are_standardised_on_the_training_set_or_left_raw(fake_mitdb, fake_beats, tmp_path):
    std = load_ecg(fake_mitdb.root, cache_dir=tmp_path)
    raw = load_ecg(fake_mitdb.root, ECGConfig(feature_scaling="none"), cache_dir=tmp_path)
    np.testing.assert_allclose(std.x_train.double().mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(std.x_train.double().std(0, unbiased=False), 1, atol=1e-3)
    train, test = split_indices(fake_beats, ECGConfig())
    assert torch.equal(raw.x_train, torch.from_numpy(fake_beats["features"][train].astype(np.float32)))
    assert torch.equal(raw.x_test, torch.from_numpy(fake_beats["features"][test].astype(np.float32)))
    assert torch.equal(raw.y_train, std.y_train) and raw.x_train.dtype == torch.float32


def test_train_is_balanced_excludes_the_test_record_and_follows_the_seed(fake_mitdb, fake_beats):
    train, test = split_indices(fake_beats, ECGConfig())
    assert len(np.unique(train)) == 20000
    assert not np.any(fake_beats["records"][train] == TEST)
    assert np.bincount(fake_beats["labels"][train]).tolist() == [10000, 10000]
    assert np.all(fake_beats["records"][test] == TEST) and len(test) == len(fake_mitdb.beats(TEST)[1])
    assert np.all(np.diff(test) > 0)  # the test record in time order
    again, _ = split_indices(fake_beats, ECGConfig())
    other, _ = split_indices(fake_beats, ECGConfig(seed=1))
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)
    # Shuffled: the classes interleave rather than arriving in two blocks.
    assert 0.3 < fake_beats["labels"][train[:1000]].mean() < 0.7
    # Every beat of the smaller class may be drawn, not one more.
    per_class = np.bincount(fake_beats["labels"][fake_beats["records"] != TEST])
    n, name = int(per_class.min()), ("normal", "abnormal")[int(per_class.argmin())]
    assert len(split_indices(fake_beats, ECGConfig(train_per_class=n))[0]) == 2 * n
    with pytest.raises(DataError, match=f"train_per_class={n + 1} exceeds the {n} {name} beats outside record 208"):
        split_indices(fake_beats, ECGConfig(train_per_class=n + 1))


def test_cache_hit_returns_identical_arrays_without_reading(fake_mitdb, tmp_path, monkeypatch):
    first = extract_beats(fake_mitdb.folder, RECORDS, ECGConfig(), tmp_path)

    def no_read(*a, **k):
        raise AssertionError("records read despite a cache")
    monkeypatch.setattr(ecg_mod, "read_record", no_read)
    again = extract_beats(fake_mitdb.folder, RECORDS, ECGConfig(seed=7, train_per_class=5), tmp_path)
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
    with pytest.raises(AssertionError, match="despite a cache"):  # another window: a miss, so a read
        extract_beats(fake_mitdb.folder, RECORDS, ECGConfig(window_ms=500), tmp_path)


def test_cache_key_follows_extraction_parameters_only(fake_mitdb):
    folder = fake_mitdb.folder
    key = cache_key(folder, [TEST], ECGConfig())
    assert key == cache_key(folder, [TEST], ECGConfig(seed=3, train_per_class=10))
    for changed in ({"window_ms": 500}, {"n_fft_components": 8}, {"edge": "drop"}):
        assert cache_key(folder, [TEST], ECGConfig(**changed)) != key
    assert cache_key(folder, ["207"], ECGConfig()) != key


def test_cache_key_follows_file_contents(fake_mitdb, tmp_path):
    (tmp_path / "mitdb").mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(fake_mitdb.folder / f"{TEST}.{ext}", tmp_path / "mitdb")
    key = cache_key(tmp_path / "mitdb", [TEST], ECGConfig())
    assert key == cache_key(fake_mitdb.folder, [TEST], ECGConfig())
    with open(tmp_path / "mitdb" / f"{TEST}.atr", "r+b") as f:
        f.seek(20)
        f.write(b"\xff")
    assert cache_key(tmp_path / "mitdb", [TEST], ECGConfig()) != key


def test_corrupt_cache_is_rebuilt(fake_mitdb, tmp_path):
    first = extract_beats(fake_mitdb.folder, [TEST], ECGConfig(), tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:1000])  # a truncated file, as a crash of a non-atomic writer leaves
    again = extract_beats(fake_mitdb.folder, [TEST], ECGConfig(), tmp_path)
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
    assert np.load(path)["features"].shape == (len(fake_mitdb.beats(TEST)[1]), 20)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_missing_data_names_where_it_looked(tmp_path, fake_mitdb):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "mitdb"))):
        locate_mitdb(tmp_path)
    (tmp_path / "mitdb").mkdir()
    for ext in ("hea", "atr"):
        shutil.copy(fake_mitdb.folder / f"{TEST}.{ext}", tmp_path / "mitdb")
    with pytest.raises(DataError, match=f"{TEST}.dat"):
        locate_mitdb(tmp_path, records=[TEST])
    # No data root and an empty cache: offline, so no download, and the message says why.
    with pytest.raises(DataError, match="FERRISTOR_OFFLINE"):
        locate_mitdb(None)
    with pytest.raises(DataError, match="mitdb"):
        load_dataset("ecg", str(tmp_path))


def test_the_user_cache_is_used_without_a_data_root(fake_mitdb, monkeypatch):
    from ferristor.data.sources import cache_root

    shutil.copytree(fake_mitdb.folder, cache_root() / "mitdb")
    assert locate_mitdb(None) == cache_root() / "mitdb"
    monkeypatch.setenv("FERRISTOR_DATA", str(fake_mitdb.root))  # an explicit root wins over the cache
    assert locate_mitdb(None) == fake_mitdb.folder


def test_unreadable_record_is_a_data_error(tmp_path, fake_mitdb):
    (tmp_path / f"{TEST}.hea").write_text("not a header\n")
    shutil.copy(fake_mitdb.folder / f"{TEST}.atr", tmp_path)
    with pytest.raises(DataError, match=f"{TEST}.*not a readable WFDB record"):
        read_record(tmp_path, TEST)


@pytest.mark.parametrize("channels, fs", [(1, 360), (2, 250)])
def test_a_record_not_shaped_like_mitdb_is_a_data_error(tmp_path, write_record, channels, fs):
    digital = np.full((1000, channels), 1024, dtype=np.int16)
    write_record(tmp_path, TEST, digital, np.array([300, 600]), np.array(["N", "V"]), fs=fs)
    with pytest.raises(DataError, match=f"expected 2 channels at 360 Hz, got {channels} at {fs} Hz"):
        read_record(tmp_path, TEST)


def test_download_fallback_goes_through_a_temporary_folder(monkeypatch, fake_mitdb):
    import wfdb

    from ferristor.data.sources import cache_root

    calls = []

    def fake_dl(db, dl_dir, records, annotators):
        calls.append((db, records, annotators))
        for r in records:
            for ext in ("hea", "dat", "atr"):
                shutil.copy(fake_mitdb.folder / f"{r}.{ext}", dl_dir)

    monkeypatch.delenv("FERRISTOR_OFFLINE")
    monkeypatch.setattr(wfdb, "dl_database", fake_dl)
    folder = locate_mitdb(None, records=[TEST])
    assert calls == [("mitdb", [TEST], ["atr"])] and folder == cache_root() / "mitdb"
    assert sorted(p.name for p in folder.iterdir()) == [f"{TEST}.atr", f"{TEST}.dat", f"{TEST}.hea"]
    assert sorted(p.name for p in cache_root().iterdir()) == ["mitdb"]  # the temporary folder is gone
    assert locate_mitdb(None, records=[TEST]) == folder and len(calls) == 1  # present now: no second fetch
    assert read_record(folder, TEST).beat_symbols.tolist() == fake_mitdb.beats(TEST)[1].tolist()

    def failing_dl(db, dl_dir, records, annotators):
        (Path(dl_dir) / "100.hea").write_text("half")
        raise OSError("network unreachable")

    monkeypatch.setattr(wfdb, "dl_database", failing_dl)
    with pytest.raises(DataError, match="could not fetch"):
        locate_mitdb(None, records=["100"])
    assert not (folder / "100.hea").exists()

    def short_dl(db, dl_dir, records, annotators):  # PhysioNet answers, but without the .atr files
        for r in records:
            for ext in ("hea", "dat"):
                shutil.copy(fake_mitdb.folder / f"{r}.{ext}", dl_dir)

    monkeypatch.setattr(wfdb, "dl_database", short_dl)
    with pytest.raises(DataError, match="lacks 101.atr"):
        locate_mitdb(None, records=["101"])
    assert not (folder / "101.hea").exists()


# ------------------------------------------------------------------------- the full database


@pytest.mark.full_data("mitdb")
def test_record_208_every_beat_under_pad(full_beats):
    in_208 = full_beats["records"] == "208"
    assert Counter(full_beats["symbols"][in_208].tolist()) == BEATS_208
    assert int(full_beats["labels"][in_208].sum()) == 2955 - 1586


@pytest.mark.full_data("mitdb")
def test_record_208_drop_policy_loses_the_two_edge_beats(full_mitdb, tmp_path, full_beats):
    # Beats at samples 46 (F) and 649,935 (N) of 650,000 have windows running past the edges.
    beats = extract_beats(full_mitdb / "mitdb", ["208"], ECGConfig(edge="drop"), tmp_path)
    assert Counter(beats["symbols"].tolist()) == {**BEATS_208, "N": 1585, "F": 372}
    # Interior beats get the same features whatever the edge policy.
    pad = full_beats["features"][full_beats["records"] == "208"]
    np.testing.assert_array_equal(beats["features"], pad[1:-1])


@pytest.mark.full_data("mitdb")
def test_full_dataset_trains_on_20000_beats_and_tests_on_all_of_208(full_ecg):
    d = full_ecg
    assert d.x_train.shape == (20000, 20) and d.x_test.shape == (2955, 20)
    assert d.y_train.bincount().tolist() == [10000, 10000] and int(d.y_test.sum()) == 2955 - 1586


def test_the_ecg_features_are_a_config_that_train_and_sweeps_build_the_data_from(fake_mitdb, tmp_path, monkeypatch):
    """TrainConfig.ecg reaches the loader: a sweep over ecg.feature_scaling loads each variant once,
    under its own data key, so the trials' keys and numbers differ; train builds the same data."""
    import dataclasses

    from ferristor.experiments.config import task_config
    from ferristor.sweeps import configs
    from ferristor.sweeps.provenance import data_key
    from ferristor.sweeps.run import plan, run_plan
    from ferristor.sweeps.spec import build_spec
    from ferristor.sweeps.table import tidy_rows
    from ferristor.sweeps.store import open_store
    monkeypatch.setattr(ecg_mod, "cache_root", lambda: tmp_path / "cache")
    assert data_key(configs.canonical(task_config("mnist"))) == "mnist"
    assert data_key(configs.canonical(task_config("ecg"))) == "ecg"
    raw_cfg = configs.resolve({"dataset": "ecg", "ecg.feature_scaling": "none"})
    assert data_key(configs.canonical(raw_cfg)) == 'ecg{"feature_scaling": "none"}'
    spec = build_spec(None, ("dataset=ecg", "epochs=0.01", "test_limit=200"), ("ecg.feature_scaling=standardise,none",))
    p = plan(spec, tmp_path / "sweep", data_dir=str(fake_mitdb.root))
    assert sorted(p.datasets) == ["ecg", 'ecg{"feature_scaling": "none"}']
    raw = load_dataset("ecg", str(fake_mitdb.root), ecg=raw_cfg.ecg)
    assert torch.equal(p.datasets['ecg{"feature_scaling": "none"}'].x_train, raw.x_train)
    assert not torch.equal(p.datasets["ecg"].x_train, raw.x_train)
    assert len({t.key for t in p.trials}) == 2
    run_plan(p, in_process=True, progress=False)
    store = open_store(tmp_path / "sweep", readonly=True)
    try:
        rows = tidy_rows(store, final_only=True)
    finally:
        store.close()
    assert sorted(r["ecg.feature_scaling"] for r in rows) == ["none", "standardise"]
    assert rows[0]["test_accuracy"] != rows[1]["test_accuracy"]
    assert dataclasses.asdict(raw_cfg.ecg)["feature_scaling"] == "none"
