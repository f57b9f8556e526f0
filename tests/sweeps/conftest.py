"""Small sweeps on a slice of MNIST: trials of a few hundred samples, seconds each."""
import pytest

from ferristor.data.registry import Dataset
from ferristor.sweeps.spec import build_spec

from ..loaded_once import datasets_read_once  # noqa: F401  (autouse: MNIST read once per test process)


@pytest.fixture(scope="session")
def tiny_mnist(mnist):
    return Dataset("mnist", mnist.x_train[:2000], mnist.y_train[:2000], mnist.x_test[:300], mnist.y_test[:300], 10)


def small_spec(*grids, sets=(), seeds="0-1"):
    # two checkpoints a trial (each a synced SQLite write, ~0.1 s here): five had cost ~0.4 s a sweep more
    base = dict(s.split("=", 1) for s in ("mode=hm", "epochs=0.3", "eval_every=0.15", "checkpoint_every=0.1", *sets))
    return build_spec(None, sets=tuple(f"{k}={v}" for k, v in base.items()), grids=grids or ("rule.k=10,100",), seeds=seeds)


def rows(folder, columns=("trial", "seed", "step", "epoch", "test_accuracy", "final", "ledger")):
    """The store's evaluation rows of done trials, as comparable tuples (timings left out)."""
    from ferristor.sweeps.store import open_store
    store = open_store(folder, readonly=True)
    try:
        return sorted(tuple(e[c] for c in columns) for e in store.evals())
    finally:
        store.close()
