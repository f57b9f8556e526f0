import pytest

from .. import loaded_once


@pytest.fixture(autouse=True)
def _datasets_read_once(monkeypatch):
    """The commands' MNIST loads read the files once per test process (tests/loaded_once.py)."""
    yield from loaded_once.install(monkeypatch)
