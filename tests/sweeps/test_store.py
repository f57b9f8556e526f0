"""The store's reading of a damaged trial row: left out with a warning, its readable columns kept."""
from __future__ import annotations

import sqlite3

import pytest

from ferristor.sweeps.store import open_store
from ferristor.sweeps.trials import Trial

A, B = "a" * 64, "b" * 64
PARAMS, CONFIG, IDENTITY = {"rule.k": 5, "seeds": [0]}, {"seeds": [0], "rule": {"k": 5}}, {"config": {"rule": {"k": 5}}}


def _damaged(folder, **columns) -> dict:
    """A store of two pending trials, A's ``columns`` set as given; what reading it keeps of A."""
    store = open_store(folder)
    store.register([Trial(A, PARAMS, CONFIG, IDENTITY), Trial(B, {**PARAMS, "seeds": [1]}, CONFIG, IDENTITY)])
    store.close()
    with sqlite3.connect(folder / "sweep.sqlite") as db:
        db.execute(f"UPDATE trials SET {', '.join(f'{c} = ?' for c in columns)} WHERE key = ?", (*columns.values(), A))
    store = open_store(folder, readonly=True)
    try:
        with pytest.warns(Warning, match=f"trial {A}: trials.{next(iter(columns))} "):
            assert [t["key"] for t in store.trials()] == [B]
        return store.damaged
    finally:
        store.close()


@pytest.mark.parametrize("column, value", [("params", "[1, 2]"), ("config", ""), ("identity", "{x"), ("result", "{x")])
def test_a_damaged_row_keeps_the_columns_that_can_be_read(tmp_path, column, value):
    """A report had opened the database a second time to read a damaged row's params, config and
    identity (which point the row is of): the store keeps them as it read them."""
    damaged = _damaged(tmp_path, **{column: value})
    expected = {"params": PARAMS, "config": CONFIG, "identity": IDENTITY, "versions": None, "result": None, column: None}
    assert list(damaged) == [A] and damaged[A]["status"] == "pending"
    assert {c: damaged[A][c] for c in expected} == expected


def test_a_row_damaged_twice_is_named_by_its_first_column_and_keeps_the_others(tmp_path):
    damaged = _damaged(tmp_path, params="[1]", result="{x")  # the warning names params, the first column read
    assert (damaged[A]["params"], damaged[A]["result"], damaged[A]["identity"]) == (None, None, IDENTITY)
