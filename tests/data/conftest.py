"""Shared MIT-BIH fixtures: the whole database is read once per session (a few seconds)."""
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mitdb_root(test_data) -> Path:
    if test_data is None or not (test_data / "mitdb" / "208.dat").is_file():
        pytest.skip(f"MIT-BIH not found under {test_data}/mitdb (set FERRISTOR_TEST_DATA)")
    return test_data


@pytest.fixture(scope="session")
def ecg_cache(tmp_path_factory) -> Path:
    """Where load_ecg caches when FERRISTOR_CACHE is this folder's parent (cache_root()/features)."""
    return tmp_path_factory.mktemp("ecg-home") / "features"


@pytest.fixture(scope="session")
def ecg_beats(mitdb_root, ecg_cache):
    """Per-beat features of all 48 records under the default config (extracted once)."""
    from ferristor.data.ecg import ECGConfig, extract_beats
    from ferristor.data.mitdb import RECORDS

    return extract_beats(mitdb_root / "mitdb", RECORDS, ECGConfig(), ecg_cache)


@pytest.fixture(scope="session")
def ecg_dataset(mitdb_root, ecg_cache, ecg_beats):
    """The ECG Dataset through the registry; it reuses the cache ``ecg_beats`` filled."""
    from ferristor.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERRISTOR_CACHE", str(ecg_cache.parent))
        mp.setenv("FERRISTOR_OFFLINE", "1")
        return load_dataset("ecg", str(mitdb_root))
