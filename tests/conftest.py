import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never download, and each gets its own empty user cache (outside its tmp_path)."""
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    monkeypatch.setenv("FERRISTOR_CACHE", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.delenv("FERRISTOR_DATA", raising=False)


import os as _os
from pathlib import Path as _Path

# The data root holding mnist/, fashion-mnist/, mitdb/: FERRISTOR_TEST_DATA, else shared/data beside the checkout.
TEST_DATA = _Path(_os.environ.get("FERRISTOR_TEST_DATA") or _Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def test_data() -> _Path:
    """The offline data root (may lack a dataset: fixtures that need one skip)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def data_root() -> _Path:
    if not (TEST_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found under {TEST_DATA}/mnist (set FERRISTOR_TEST_DATA)")
    return TEST_DATA


@pytest.fixture(scope="session")
def mnist(data_root):
    from ferristor.data import load_dataset
    return load_dataset("mnist", str(data_root))
