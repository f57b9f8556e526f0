"""Shared MIT-BIH fixtures: the whole database is read once per session (a few seconds)."""
import os
from pathlib import Path

import pytest

# The data root holding mitdb/: FERRISTOR_TEST_DATA, else the project's shared/data beside the checkout.
DATA_ROOT = Path(os.environ.get("FERRISTOR_TEST_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


@pytest.fixture(scope="session")
def mitdb_root() -> Path:
    if not (DATA_ROOT / "mitdb" / "208.dat").is_file():
        pytest.skip(f"MIT-BIH not found under {DATA_ROOT}/mitdb (set FERRISTOR_TEST_DATA)")
    return DATA_ROOT


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
