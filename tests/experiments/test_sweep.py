"""Trial keys (the sweep engine itself: tests/sweeps/)."""
import numpy as np
import pytest

from ferristor.errors import ConfigError
from ferristor.experiments.sweep import trial_key


def test_key_is_stable_and_order_independent():
    c = {"dataset": "mnist", "k": 100, "p": 0.2, "sizes": [784, 200, 10]}
    # Pinned (sha256 of the compact sorted JSON): a change of this value would orphan every saved result of every sweep.
    assert trial_key(c) == "b23d9318bb9bde9f"
    assert trial_key(dict(reversed(list(c.items())))) == trial_key(c)
    assert trial_key({**c, "sizes": (784, 200, 10)}) == trial_key(c)
    assert trial_key({**c, "k": np.int64(100), "p": np.float64(0.2)}) == trial_key(c)
    assert trial_key({**c, "k": 101}) != trial_key(c)
    assert trial_key({**c, "nested": {"a": 1, "b": 2}}) == trial_key({**c, "nested": {"b": 2, "a": 1}})
    for bad in ({1: "x"}, {"lr": float("nan")}, {"f": object()}):
        with pytest.raises(ConfigError):
            trial_key(bad)


def test_no_partial_file_on_exception(tmp_path):
    from ferristor.atomic import atomic_write
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write('{"half": ')
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
