import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Tests never download, and each gets its own empty user cache (outside its tmp_path)."""
    monkeypatch.setenv("FERRISTOR_OFFLINE", "1")
    monkeypatch.setenv("FERRISTOR_CACHE", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.delenv("FERRISTOR_DATA", raising=False)
