"""MNIST and Fashion-MNIST read once per test process, for the CLI and sweep tests that load them
through the commands (~2 s a load here: gunzip, pixels to floats, then a hash of every sample).

Every load still finds and verifies its files for real (``locate``: a missing or corrupt file, a
wrong --data-dir fail as before); only reading the same verified files again is skipped, and a
dataset's hash is reused only for these very tensors. A command gets its own copy of the Dataset (its
fields may be reassigned) sharing the tensors; a test that changed them in place fails at teardown
rather than passing them on to the next test."""
from __future__ import annotations

import copy

import pytest

from ferristor.data import registry
from ferristor.data.sources import locate
from ferristor.experiments import fit
from ferristor.sweeps import provenance

_FILES = {"mnist": registry.MNIST_FILES, "fashion-mnist": registry.FASHION_FILES}
_PARTS = ("x_train", "y_train", "x_test", "y_test")
# (name, each verified file's path, size and mtime) -> (the Dataset, its tensors' versions when loaded)
_loaded: dict[tuple, tuple[registry.Dataset, tuple[int, ...]]] = {}
_hashes: dict[tuple[str, int], str] = {}  # (hash function, id of a cached Dataset's x_train) -> hash


def _versions(ds) -> tuple[int, ...]:
    return tuple(getattr(ds, p)._version for p in _PARTS)  # torch bumps it on every in-place change


def _reader(name, real):
    def load(data_dir):
        paths = locate(_FILES[name], data_dir)  # as the real loader does: finds and verifies, or raises
        key = (name, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values()))
        if key not in _loaded:
            ds = real(data_dir)
            _loaded[key] = ds, _versions(ds)
        return copy.copy(_loaded[key][0])
    return load


def _cached(ds):
    """The cached Dataset whose four tensors ``ds`` holds (then their ids are never reused), else None."""
    return next((c for c, _ in _loaded.values() if all(getattr(ds, p) is getattr(c, p) for p in _PARTS)), None)


def _hash_once(where, real):
    def hashed(ds) -> str:
        if _cached(ds) is None:
            return real(ds)
        key = (where, id(ds.x_train))
        if key not in _hashes:
            _hashes[key] = real(ds)
        return _hashes[key]
    return hashed


def install(monkeypatch):
    """Route the test's dataset loads and data hashes through the cache (a generator, for an autouse
    fixture); after the test, the cached tensors must be as loaded."""
    for name in _FILES:
        monkeypatch.setitem(registry.DATASETS, name, _reader(name, registry.DATASETS[name]))
    monkeypatch.setattr(provenance, "fingerprint", _hash_once("sweeps", provenance.fingerprint))
    monkeypatch.setattr(fit, "fingerprint", _hash_once("fit", fit.fingerprint))
    yield
    changed = [key for key, (ds, versions) in _loaded.items() if _versions(ds) != versions]
    for key in changed:  # later tests read the files again
        ds, _ = _loaded.pop(key)
        for where in ("sweeps", "fit"):
            _hashes.pop((where, id(ds.x_train)), None)
    assert not changed, f"the test changed the {[k[0] for k in changed]} tensors it was given in place"


@pytest.fixture(autouse=True)
def datasets_read_once(monkeypatch):
    """Autouse where a conftest imports it: the commands' loads read the files once per test process."""
    yield from install(monkeypatch)


def first_rows(real, train: int = 6000, test: int | None = None, reads: list | None = None):
    """A loader of ``real``'s signature that reads a dataset once (for the test using it) and cuts it to
    its first ``train`` training and ``test`` test rows (None: all); ``reads`` collects the names asked for."""
    loaded = {}

    def load(name, data_dir=None, **kw):
        if reads is not None:
            reads.append(name)
        if name not in loaded:
            d = real(name, data_dir, **kw)
            loaded[name] = registry.Dataset(d.name, d.x_train[:train], d.y_train[:train], d.x_test[:test],
                                            d.y_test[:test], d.n_classes)
        return loaded[name]
    return load
