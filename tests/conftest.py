import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never download, and never touch the user's cache."""
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    monkeypatch.setenv("FERRISTOR_CACHE", str(tmp_path_factory.getbasetemp() / "user-cache"))
    monkeypatch.delenv("FERRISTOR_DATA", raising=False)
