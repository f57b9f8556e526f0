"""The results store: one SQLite database per sweep folder (``sweep.sqlite``), written by the driver
alone (the folder lock makes sure), in WAL mode so readers (``ferristor results``, a report) never
block it.

Tables:

* ``trials`` — one per trial: key, params (JSON), resolved config (JSON), status (pending, running,
  done, failed), attempts, failures, the last error (kept once done, as a record), the worker that ran it, the code version and
  versions, the full results dict of ``train`` (JSON), timestamps.
* ``evals`` — one per trial × seed × evaluation: step, epoch, test accuracy (and validation accuracy
  when the config holds a validation set out), and on the trial's last
  evaluation (``final = 1``) the replica's ledger totals and energy (JSON ``ledger``), its train
  seconds and speed. Rows stream in as evaluations happen; a trial's rows count once it is done.
* ``checkpoints`` — the latest mid-trial checkpoint of each unfinished trial (a BLOB of
  ``torch.save``), handed to the next attempt; deleted when the trial is done, or when the worker
  finds it unusable (the trial then starts over).
* ``meta`` — schema version, the sweep's spec.
* view ``results`` — evals of done trials joined with their trial's config columns, for SQL users.

Every change is one transaction, so a kill at any moment leaves the store as it was before or after it.
"""
from __future__ import annotations

import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

from ..errors import DataError, FerristorWarning
from ..experiments.results import dumps, loads
from .configs import config_paths

FILENAME = "sweep.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    key TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    params TEXT NOT NULL,
    config TEXT NOT NULL,
    identity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    worker TEXT,
    code_version TEXT,
    versions TEXT,
    result TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS evals (
    trial TEXT NOT NULL REFERENCES trials(key),
    seed INTEGER NOT NULL,
    replica INTEGER NOT NULL,
    step INTEGER NOT NULL,
    epoch REAL NOT NULL,
    test_accuracy REAL NOT NULL,
    val_accuracy REAL,
    final INTEGER NOT NULL DEFAULT 0,
    ledger TEXT,
    train_seconds REAL,
    sample_replicas_per_second REAL,
    received REAL NOT NULL,
    PRIMARY KEY (trial, seed, step)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    trial TEXT PRIMARY KEY REFERENCES trials(key),
    step INTEGER NOT NULL,
    state BLOB NOT NULL,
    saved REAL NOT NULL
);
"""

# Ledger figures the ``results`` view exposes as columns (the full dict stays in evals.ledger).
LEDGER_COLUMNS = ("fecap_ops.mean", "fecap_ops.worst", "fecap_ops.total", "fecap_ops.mean_sign_msb_cell",
                  "memristor_ops.mean", "memristor_ops.worst", "memristor_ops.total",
                  "energy_nJ.per_device_fecap", "energy_nJ.per_device_memristor", "energy_nJ.total",
                  "endurance.fecap_worst_cycles", "endurance.memristor_worst_cycles")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Store:
    """The sweep's database. Open it with :func:`open_store`; one writer at a time (the driver)."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        self.unreadable: dict[str, str] = {}  # trial key (or an evaluation) → why its row could not be read
        # trial key → its unreadable row, each JSON column read where it can be (None where not): its
        # params and identity still tell a report which point the row is of, without reading it again
        self.damaged: dict[str, dict] = {}
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None)
        else:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions
        # A store missing some of its tables (a hand-dropped evals) had been read as far as a query of
        # that table ("unexpected OperationalError") and, opened to resume, given them back empty by
        # CREATE TABLE IF NOT EXISTS: finished trials with no evaluations, counted done. Refused first.
        try:
            self._check_tables()
        except BaseException:
            self.db.close()
            raise
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a finished trial survives a power cut, not only a kill
            self.db.execute(f"PRAGMA journal_size_limit={64 << 20}")  # checkpoints pass through the WAL
            with self.tx():
                for statement in _SCHEMA.split(";"):  # not executescript, which commits on its own
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._results_view()
        self.db.row_factory = sqlite3.Row
        version = self.meta("schema_version")
        if version is not None and int(version) != SCHEMA_VERSION:
            raise DataError(f"{path}: results store schema {version}, this version reads {SCHEMA_VERSION}")

    def _check_tables(self) -> None:
        """Raise :class:`UnreadableStore` where the store has some of its tables but not all, or a table
        without one of its columns; a new (empty) file has none and is created whole."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        expected = _expected_columns()
        if not tables & set(expected):
            return
        missing = [t for t in expected if t not in tables]
        if missing:
            raise UnreadableStore(self.path, f"its {', '.join(missing)} table{'s are' if len(missing) > 1 else ' is'} "
                                             f"missing")
        for table, columns in expected.items():
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({_q(table)})")}
            lost = [c for c in columns if c not in have]
            if lost:
                raise UnreadableStore(self.path, f"its {table} table has no {', '.join(lost)} column"
                                                 f"{'s' if len(lost) > 1 else ''}")

    # -- plumbing ---------------------------------------------------------------------------------
    class _Tx:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, *_):
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                    return
                except BaseException:
                    self._rollback()  # a COMMIT that failed (disk full, I/O error) may leave it open
                    raise
            self._rollback()  # and the block's own exception propagates, not the rollback's

        def _rollback(self) -> None:
            # On SQLITE_FULL and some I/O errors SQLite has already rolled the transaction back itself:
            # a ROLLBACK then fails ("no transaction is active") and would hide the real error.
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def tx(self):
        return self._Tx(self.db)

    def close(self) -> None:
        self.db.close()

    def _results_view(self) -> None:
        cfg = ", ".join(f"json_extract(t.config, '$.{p}') AS {_q(p)}" for p in config_paths())
        led = ", ".join(f"json_extract(e.ledger, '$.{c}') AS {_q('ledger.' + c)}" for c in LEDGER_COLUMNS)
        self.db.execute("DROP VIEW IF EXISTS results")
        self.db.execute(f"""CREATE VIEW results AS SELECT t.key AS trial, t.params AS params, {cfg},
            e.seed, e.replica, e.step, e.epoch, e.test_accuracy, e.val_accuracy, e.final, {led}, e.train_seconds,
            e.sample_replicas_per_second, t.code_version AS code_version
            FROM evals e JOIN trials t ON t.key = e.trial WHERE t.status = 'done'""")

    # -- meta -------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- trials -----------------------------------------------------------------------------------
    def register(self, trials: Iterable) -> None:
        """Add trials not yet in the store (as pending); a trial left 'running' by a driver that died
        goes back to pending. Finished and failed trials are kept as they are."""
        now = time.time()
        with self.tx() as db:
            n = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM trials").fetchone()[0]
            for t in trials:
                cur = db.execute("INSERT OR IGNORE INTO trials (key, position, params, config, identity, status, created) "
                                 "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                                 (t.key, n, _dumps(t.params), _dumps(t.config), _dumps(t.identity), now))
                n += cur.rowcount
            db.execute("UPDATE trials SET status = 'pending', worker = NULL WHERE status = 'running'")

    def status(self, keys: Iterable[str] | None = None) -> dict[str, sqlite3.Row]:
        rows = self.db.execute("SELECT key, status, attempts, failures, error, params, worker, started, finished "
                               "FROM trials ORDER BY position").fetchall()
        wanted = None if keys is None else set(keys)
        return {r["key"]: r for r in rows if wanted is None or r["key"] in wanted}

    def retry_failed(self, keys: Iterable[str]) -> None:
        with self.tx() as db:
            db.executemany("UPDATE trials SET status = 'pending', failures = 0, error = NULL WHERE key = ? "
                           "AND status = 'failed'", [(k,) for k in keys])

    def mark_running(self, key: str) -> int:
        """Count a new attempt; return its number."""
        with self.tx() as db:
            db.execute("UPDATE trials SET status = 'running', attempts = attempts + 1, started = ? WHERE key = ?",
                       (time.time(), key))
            return db.execute("SELECT attempts FROM trials WHERE key = ?", (key,)).fetchone()[0]

    def set_worker(self, key: str, worker: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE trials SET worker = ? WHERE key = ?", (worker, key))

    def add_eval(self, key: str, seeds: list[int], record: dict) -> None:
        """Stream one evaluation in (a rerun of the same step replaces it with the same numbers)."""
        now = time.time()
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO evals (trial, seed, replica, step, epoch, test_accuracy, val_accuracy, "
                           "received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(key, s, i, int(record["step"]), float(record["epoch"]), float(a), _val(record, i), now)
                            for i, (s, a) in enumerate(zip(seeds, record["test_accuracy"]))])

    def save_checkpoint(self, key: str, step: int, blob: bytes) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)", (key, step, blob, time.time()))

    def drop_checkpoint(self, key: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM checkpoints WHERE trial = ?", (key,))

    def checkpoint(self, key: str) -> tuple[int, bytes] | None:
        row = self.db.execute("SELECT step, state FROM checkpoints WHERE trial = ?", (key,)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def finish(self, key: str, results: dict, code_version: str | None) -> None:
        """Record a finished trial in one transaction: every evaluation row (so a row streamed before a
        crash is checked against the final history), the final rows' ledger and timing, the status."""
        seeds, timing = results["seeds"], results.get("timing", {})
        ledger = results.get("ledger") or []
        final_step = results["history"][-1]["step"]
        now = time.time()
        with self.tx() as db:
            db.execute("DELETE FROM evals WHERE trial = ?", (key,))
            for record in results["history"]:
                final = record["step"] == final_step
                db.executemany(
                    "INSERT INTO evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(key, s, i, int(record["step"]), float(record["epoch"]), float(a), _val(record, i), int(final),
                      _dumps(ledger[i]["network"]) if final and i < len(ledger) else None,
                      timing.get("train_seconds") if final else None,
                      timing.get("sample_replicas_per_second") if final else None, now)
                     for i, (s, a) in enumerate(zip(seeds, record["test_accuracy"]))])
            db.execute("UPDATE trials SET status = 'done', result = ?, versions = ?, code_version = ?, "
                       "finished = ? WHERE key = ?",
                       (_dumps(results), _dumps(results.get("versions", {})), code_version, now, key))
            db.execute("DELETE FROM checkpoints WHERE trial = ?", (key,))

    def fail(self, key: str, error: str, give_up: bool) -> int:
        """Count a failed attempt; with ``give_up`` mark the trial failed (its checkpoint is kept, so
        ``--retry-failed`` resumes it). Return the failures so far."""
        with self.tx() as db:
            db.execute("UPDATE trials SET failures = failures + 1, error = ?, status = ? WHERE key = ?",
                       (error, "failed" if give_up else "pending", key))
            return db.execute("SELECT failures FROM trials WHERE key = ?", (key,)).fetchone()[0]

    def failures(self, key: str) -> int:
        return self.db.execute("SELECT failures FROM trials WHERE key = ?", (key,)).fetchone()[0]

    # -- reading ----------------------------------------------------------------------------------
    def trials(self, status: str | None = None) -> list[dict]:
        """The trials (of ``status``), each one's params with what tells it apart from the store's
        other trials of the same params (:func:`distinguishing`). A row whose JSON cannot be read (a
        hand edit, a damaged file) is left out with a warning and kept in :attr:`unreadable`."""
        rows = []
        for r in self.db.execute("SELECT * FROM trials ORDER BY position").fetchall():
            d, why = _decoded(dict(r))
            if why is None:
                rows.append(d)
            elif status is None or d["status"] == status:
                self._unreadable(d["key"], why)
                self.damaged.setdefault(d["key"], d)
        extra = distinguishing(rows)  # over every trial: a point's twin may have another status
        return [{**d, "params": {**d["params"], **extra.get(d["key"], {})}} for d in rows
                if status is None or d["status"] == status]

    def evals(self, final_only: bool = False, readable: set[str] | None = None) -> list[dict]:
        """The evaluations of the done trials that :meth:`trials` reads (``readable``: their keys, where
        the caller has just read them); a row whose ledger JSON cannot be read is left out with a
        warning, as a trial is."""
        if readable is None:
            readable = {t["key"] for t in self.trials("done")}
        sql = ("SELECT e.* FROM evals e JOIN trials t ON t.key = e.trial WHERE t.status = 'done'"
               + (" AND e.final = 1" if final_only else "") + " ORDER BY t.position, e.step, e.replica")
        rows = []
        for r in self.db.execute(sql).fetchall():
            if r["trial"] not in readable:
                continue
            why = _read_json(r["ledger"], (dict, type(None)), "evals.ledger")[1]
            if why is None:
                rows.append(dict(r))
            else:
                self._unreadable(f"{r['trial']} seed {r['seed']} step {r['step']}", why)
        return rows

    def _unreadable(self, what: str, why: str) -> None:
        if what not in self.unreadable:
            self.unreadable[what] = why
            warnings.warn(FerristorWarning(f"skipped: {self.path}: trial {what}: {why}"), stacklevel=3)


RESTART_HINT = ("it cannot be read or resumed: start over in another --out, or remove it "
                "(ferristor reproduce: --fresh discards it)")


class UnreadableStore(DataError):
    """A results store that is damaged beyond a row: it cannot be read, nor a sweep resume in it."""

    def __init__(self, path, why: str):
        super().__init__(f"{path}: not a readable results store ({why}); {RESTART_HINT}")


_COLUMNS: dict[str, list[str]] = {}


def _expected_columns() -> dict[str, list[str]]:
    """table → its columns, as :data:`_SCHEMA` creates them (read once from an in-memory database)."""
    if not _COLUMNS:
        db = sqlite3.connect(":memory:")
        try:
            db.executescript(_SCHEMA)
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                _COLUMNS[table] = [r[1] for r in db.execute(f"PRAGMA table_info({_q(table)})")]
        finally:
            db.close()
    return _COLUMNS


# A trial row's JSON columns and what each must hold (None: the column may be NULL).
_JSON_COLUMNS = {"params": dict, "config": dict, "identity": dict, "versions": (dict, type(None)),
                 "result": (dict, type(None))}


def _read_json(text, kind, column: str) -> tuple[Any, str | None]:
    """(the value of JSON ``text``, None), or (None, why it is not JSON of ``kind``)."""
    try:
        value = loads(text) if text is not None else None
    except (ValueError, TypeError, RecursionError) as e:
        return None, f"{column} is not readable JSON ({e})"
    if not isinstance(value, kind):
        return None, f"{column} holds {_dumps(value)[:40]}, expected an object"
    return value, None


def _decoded(d: dict) -> tuple[dict, str | None]:
    """``d`` with its JSON columns read (None: one that cannot be), and why the first that cannot be
    cannot (None: all can). Every column is read, so a damaged row keeps those that can be."""
    whys = []
    for column, kind in _JSON_COLUMNS.items():
        d[column], why = _read_json(d[column], kind, f"trials.{column}")
        whys.append(why)
    return d, next((why for why in whys if why is not None), None)


def distinguishing(trials: list[dict]) -> dict[str, dict]:
    """key → the config values (dotted paths) in which a trial differs from the other trials of the
    same params: a folder swept twice with other ``--set`` bases holds two ``rule.k=10`` points, told
    apart only by their base settings (or by the data they trained on: ``data``, the start of its
    fingerprint; failing all, by ``key``, the start of the trial key)."""
    from ..config_base import flatten
    from .trials import EXECUTION_FIELDS
    groups: dict[str, list[dict]] = {}
    for t in trials:
        groups.setdefault(_dumps(t["params"]), []).append(t)
    extra = {}
    for same in groups.values():
        if len(same) < 2:
            continue
        leaves = [{**{p: v for p, v in flatten(t["config"] or {}).items() if p.split(".")[0] not in EXECUTION_FIELDS},
                   "data": str((t["identity"] or {}).get("data"))[:12]} for t in same]
        paths = [p for p in dict.fromkeys(p for f in leaves for p in f)
                 if p not in same[0]["params"] and len({_dumps(f.get(p)) for f in leaves}) > 1]
        for t, f in zip(same, leaves):
            extra[t["key"]] = {p: f.get(p) for p in paths} if paths else {"key": t["key"][:12]}
    return extra


def _val(record: dict, i: int) -> float | None:
    """Replica i's validation accuracy, when the run held out a validation set (``validation`` > 0)."""
    v = record.get("val_accuracy")
    return float(v[i]) if v is not None else None


def _dumps(v: Any) -> str:
    """Strict JSON (a margin of devices never written is null): SQLite's JSON functions, and the
    ``results`` view built on them, refuse ``Infinity``. Read back with ``results.loads``."""
    return dumps(v, sort_keys=True, separators=(",", ":"))


def store_path(folder: str | Path) -> Path:
    return Path(folder) / FILENAME


def open_store(folder: str | Path, readonly: bool = False) -> Store:
    path = store_path(folder)
    if readonly and not path.exists():
        raise DataError(f"{folder}: no results store ({FILENAME}); is it a sweep folder?")
    try:
        return Store(path, readonly=readonly)
    except sqlite3.DatabaseError as e:
        raise UnreadableStore(path, str(e)) from None
