"""The store as a tidy table: one row per trial × seed × evaluation of the done trials, with the
resolved config as columns (dotted paths), accuracy, the ledger's numbers (on final rows), timings and
the code version; filtered with ``--where`` and written as a text table, CSV or Parquet."""
from __future__ import annotations

import csv
import io
import json
import math
import operator
import re
from typing import Any, Iterable

from ..config_base import flatten
from ..errors import FerristorError
from ..experiments.results import loads
from .configs import config_paths, get_path
from .store import Store


class TableError(FerristorError):
    pass


class Rows(list):
    """Rows that know their columns: a filter that keeps no row still writes the CSV's header."""

    def __init__(self, rows: Iterable[dict] = (), columns: Iterable[str] = ()):
        super().__init__(rows)
        self.columns = list(columns)


def columns_of(rows: list[dict]) -> list[str]:
    return rows.columns if isinstance(rows, Rows) else list(rows[0]) if rows else []


def _flatten(d: dict, prefix: str) -> dict[str, Any]:
    """The scalar leaves of ``d`` as {prefix + dotted path: value}."""
    return {k: v for k, v in flatten(d, prefix).items() if isinstance(v, (int, float, str, bool)) or v is None}


def tidy_rows(store: Store, final_only: bool = False) -> Rows:
    trials = {t["key"]: t for t in store.trials("done")}
    paths = config_paths()
    labels = list(dict.fromkeys(k for t in trials.values() for k in t["params"] if k not in paths))
    rows = []
    from ..experiments.config import with_legacy_defaults  # a trial stored before a field existed shows its value
    full = {key: with_legacy_defaults(t["config"]) for key, t in trials.items()}
    for e in store.evals(final_only, readable=set(trials)):
        t = trials[e["trial"]]
        row: dict[str, Any] = {"trial": e["trial"]}
        row.update({k: _cell(t["params"].get(k)) for k in labels})
        for p in paths:
            try:
                row[p] = _cell(get_path(full[e["trial"]], p))
            except (KeyError, TypeError):
                row[p] = None
        row.update({"seed": e["seed"], "replica": e["replica"], "step": e["step"], "epoch": e["epoch"],
                    "test_accuracy": e["test_accuracy"], "val_accuracy": e["val_accuracy"], "final": bool(e["final"])})
        row.update(_flatten(loads(e["ledger"]) if e["ledger"] else {}, "ledger."))
        timing = (t.get("result") or {}).get("timing") or {}
        row.update({"train_seconds": e["train_seconds"],
                    # numba's compilation within train_seconds (the trial's results; on its final rows, as train_seconds)
                    "compile_seconds": timing.get("compile_seconds") if e["final"] else None,
                    "sample_replicas_per_second": e["sample_replicas_per_second"], "code_version": t["code_version"]})
        row.update({f"versions.{k}": v for k, v in (t["versions"] or {}).items()})
        rows.append(row)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if not rows:  # no finished trial: the columns every row has (ledger and versions come with a trial)
        columns = ["trial", *paths, "seed", "replica", "step", "epoch", "test_accuracy", "val_accuracy", "final",
                   "train_seconds", "compile_seconds", "sample_replicas_per_second", "code_version"]
    return Rows([{c: r.get(c) for c in columns} for r in rows], columns)


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


_OPS = {"<=": operator.le, ">=": operator.ge, "!=": operator.ne, "=": operator.eq, "<": operator.lt, ">": operator.gt}
# a column may hold spaces (the ledger's 'roles.LSB cells.devices'), not at its ends
_COND = re.compile(r"^\s*([^<>=!]*[^<>=!\s])\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$")


def check_condition(text: str) -> None:
    """Refuse ``test_accuracy>40``: the store holds accuracies as fractions 0–1 (train and sweep
    print percent), so a threshold above 1 (or written with %) matches no row or every row, never what
    was meant. Refused rather than converted: 1 itself is a valid fraction, so no rule could tell
    a percent from a fraction in every case, and a silent guess could filter wrongly."""
    m = _COND.match(text)
    if not m or not m.group(1).endswith("accuracy"):
        return
    col, op, raw = m.groups()
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        return
    if raw.endswith("%") or value > 1:
        raise TableError(f"--where {text!r}: accuracies are stored as fractions 0–1, not percent: "
                         f"write {col}{op}{value / 100:g}")


def where(rows: list[dict], conditions: Iterable[str]) -> Rows:
    """Keep rows meeting every ``COLUMN OP VALUE`` (OP: = != < <= > >=), e.g. ``rule.k=100``. The
    value is read as the column's cells are: a number, true/false in any case (as printed, True), or
    text; one that cannot be (``rule.k=abc``, ``rule.k==10``) is refused, not left to match no row."""
    columns = columns_of(rows)
    kept = rows
    for text in conditions:
        check_condition(text)
        m = _COND.match(text)
        if not m or not m.group(3):
            raise TableError(f"--where {text!r}: expected COLUMN=VALUE (or !=, <, <=, >, >=), e.g. rule.k=100")
        col, op, raw = m.groups()
        if rows and col not in columns:  # against every row: an earlier condition may have kept none
            raise TableError(f"--where {text!r}: no column '{col}': expected one of {', '.join(columns)}")
        test = _test(text, col, op, raw, _kind(rows, col))
        kept = [r for r in kept if test(r.get(col))]
    return Rows(kept, columns)


def _kind(rows: list[dict], col: str) -> str | None:
    """What the column's cells hold: 'booleans', 'numbers' or 'text'; 'mixed'; None where all are empty."""
    kinds = {"booleans" if isinstance(v, bool) else "numbers" if isinstance(v, (int, float)) else "text"
             for r in rows if (v := r.get(col)) is not None}
    return None if not kinds else kinds.pop() if len(kinds) == 1 else "mixed"


def _boolean(raw: str) -> bool | None:
    return {"true": True, "false": False}.get(raw.lower())


def _number(raw: str) -> int | float | None:
    for read in (int, float):
        try:
            return read(raw)
        except ValueError:
            pass
    return None


def _text(raw: str) -> str:
    """A list or dict as its cell is written (JSON), a JSON string unquoted, anything else as typed
    (ecg.test_record=208 is the text '208')."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else raw


def _test(text: str, col: str, op: str, raw: str, kind: str | None):
    """The test of one cell (None never matches) for the condition ``text``, on a column of ``kind``."""
    fn = _OPS[op]
    if raw[0] in "=<>!":  # 'rule.k==10' parses as rule.k = '=10': a typo, which would match no row
        raise TableError(f"--where {text!r}: the value '{raw}' begins with '{raw[0]}': write one operator "
                         f"(= != < <= > >=) between the column and the value")
    if kind == "booleans":
        value = _boolean(raw)
        if value is None:
            raise TableError(f"--where {text!r}: column '{col}' holds booleans: expected true or false (any case), "
                             f"got '{raw}'")
        if op not in ("=", "!="):
            raise TableError(f"--where {text!r}: column '{col}' holds booleans: compare it with = or !=")
        return lambda v: v is not None and fn(v, value)
    if kind == "numbers":
        value = _number(raw)
        if value is None:
            raise TableError(f"--where {text!r}: column '{col}' holds numbers: expected a number, got '{raw}'")
        if math.isnan(value):  # printed as nan, and nan equals nothing: = nan finds the nan cells
            if op not in ("=", "!="):
                raise TableError(f"--where {text!r}: nan is not ordered: compare it with = or !=")
            return lambda v: v is not None and math.isnan(v) == (op == "=")
        return lambda v: v is not None and fn(v, value)
    if kind == "text":
        value = _text(raw)
        return lambda v: v is not None and fn(v, value)
    # mixed (or empty) column: each cell against the value read as its own kind; a cell of a kind the
    # value cannot be differs from it
    values = {bool: _boolean(raw), int: _number(raw), float: _number(raw), str: _text(raw)}

    def test(v):
        if v is None:
            return False
        want = values[type(v)] if type(v) in values else _text(raw)
        return op == "!=" if want is None else fn(v, want)
    return test


def to_csv(rows: list[dict]) -> str:
    """The header, even with no row (a filter that keeps none), then the rows."""
    buf = io.StringIO()
    columns = columns_of(rows)
    if columns:
        w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def to_parquet(rows: list[dict], path, name: str = "out") -> None:
    """``rows`` as a Parquet file at ``path``, written whole or not at all (``name``: the option that gave it)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError("--format parquet needs pyarrow: pip install 'ferristor[results]'") from None
    columns = columns_of(rows)
    from ..atomic import atomic_write
    with atomic_write(path, name=name) as f:  # a failed write (a full disk) leaves the previous file whole
        pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), f)


# The columns a text table shows: what varies, then the figures people look at.
_SHOWN = ("seed", "epoch", "test_accuracy", "val_accuracy", "ledger.fecap_ops.mean_sign_msb_cell", "ledger.memristor_ops.mean",
          "ledger.energy_nJ.per_device", "train_seconds", "compile_seconds")


def to_text(rows: list[dict], empty: str = "no finished trial matches") -> str:
    """The rows as a text table, each column's numbers in one format; ``empty`` says why there is
    no row."""
    if not rows:
        return f"(no rows: {empty})"
    settings = set(config_paths())  # ledger.memristor_energy_pj is a setting (shown when it varies), ledger.energy_nJ… a figure
    varying = [c for c in rows[0] if c not in _SHOWN and c not in ("trial", "replica", "step", "final")
               and (c in settings or not c.startswith(("ledger.", "versions.")))
               and c not in ("sample_replicas_per_second", "code_version")
               and len({json.dumps(r[c]) for r in rows}) > 1]
    cols = ["trial", *varying, *[c for c in _SHOWN if c in rows[0] and any(r[c] is not None for r in rows)]]
    big = {c for c in cols if any(isinstance(v := r.get(c), float) and not isinstance(v, bool) and math.isfinite(v)
                                  and abs(v) >= 1000 for r in rows)}
    cells = [[_fmt(r.get(c), c in big) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _fmt(v, big: bool = False) -> str:
    """A cell; the floats of a column holding one of 1,000 or more (``big``) all as whole numbers with
    thousands separators, else all with 4 decimals: a column had mixed 5,280 with 959.9636."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:,.0f}" if big and math.isfinite(v) else f"{v:.4f}"
    return str(v)
