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


@pytest.mark.parametrize("damage, said", [
    ("DROP TABLE evals", "its evals table is missing"),
    ("DROP TABLE trials", "its trials table is missing"),
    ("DROP TABLE checkpoints", "its checkpoints table is missing"),
    ("DROP TABLE meta", "its meta table is missing"),
    ("ALTER TABLE evals DROP COLUMN ledger", "its evals table has no ledger column")])
@pytest.mark.parametrize("readonly", [True, False])
def test_a_store_missing_a_table_or_column_is_not_readable(tmp_path, damage, said, readonly):
    """A dropped evals table had been an "unexpected OperationalError … a bug" to results, and to a
    sweep resuming there a table made anew, empty: its done trials counted done with no evaluations."""
    from ferristor.errors import DataError
    store = open_store(tmp_path)
    store.register([Trial(A, PARAMS, CONFIG, IDENTITY)])
    store.close()
    with sqlite3.connect(tmp_path / "sweep.sqlite") as db:
        db.execute("DROP VIEW results")  # the view names the columns: SQLite drops none a view reads
        db.execute(damage)
    with pytest.raises(DataError) as e:
        open_store(tmp_path, readonly=readonly)
    assert str(e.value) == (f"{tmp_path / 'sweep.sqlite'}: not a readable results store ({said}); it cannot be read "
                            f"or resumed: start over in another --out, or remove it (ferristor reproduce: --fresh "
                            f"discards it)")
    with sqlite3.connect(tmp_path / "sweep.sqlite") as db:  # nothing made anew in it
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert damage.split()[2] not in tables or "COLUMN" in damage


def test_a_new_store_is_made_whole_and_read_again(tmp_path):
    open_store(tmp_path).close()
    open_store(tmp_path).close()
    open_store(tmp_path, readonly=True).close()


class _NoStart:
    def start(self, *a):
        pytest.fail("the executor was started")


@pytest.mark.parametrize("column, value", [("params", "[1, 2]"), ("config", ""), ("identity", "{x")])
def test_a_sweep_does_not_resume_over_a_trial_row_that_cannot_say_what_it_is(tmp_path, column, value):
    """A done trial whose config (params, identity) had been damaged kept its key: the rerun counted it done
    ("2/2 trials done, 0 ran now") while results skipped it."""
    from ferristor.errors import DataError
    from ferristor.sweeps.driver import run_sweep
    store = open_store(tmp_path)
    store.register([Trial(A, PARAMS, CONFIG, IDENTITY)])
    store.close()
    with sqlite3.connect(tmp_path / "sweep.sqlite") as db:
        db.execute(f"UPDATE trials SET status = 'done', {column} = ? WHERE key = ?", (value, A))
    with pytest.raises(DataError) as e:
        run_sweep([Trial(A, PARAMS, CONFIG, IDENTITY)], tmp_path, {}, executor=_NoStart(), progress=False)
    assert str(e.value).startswith(f"{tmp_path / 'sweep.sqlite'}: not a readable results store (trial {A}: "
                                   f"trials.{column} ")
    assert "start over in another --out, or remove it (ferristor reproduce: --fresh discards it)" in str(e.value)
