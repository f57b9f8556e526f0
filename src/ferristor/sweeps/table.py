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
from .configs import config_paths, get_path
from .store import Store


class TableError(FerristorError):
    pass


def _flatten(d: dict, prefix: str) -> dict[str, Any]:
    """The scalar leaves of ``d`` as {prefix + dotted path: value}."""
    return {k: v for k, v in flatten(d, prefix).items() if isinstance(v, (int, float, str, bool)) or v is None}


def tidy_rows(store: Store, final_only: bool = False) -> list[dict[str, Any]]:
    trials = {t["key"]: t for t in store.trials("done")}
    paths = config_paths()
    labels = list(dict.fromkeys(k for t in trials.values() for k in t["params"] if k not in paths))
    rows = []
    from ..experiments.config import with_legacy_defaults  # a trial stored before a field existed shows its value
    full = {key: with_legacy_defaults(t["config"]) for key, t in trials.items()}
    for e in store.evals(final_only):
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
        row.update(_flatten(json.loads(e["ledger"]) if e["ledger"] else {}, "ledger."))
        row.update({"train_seconds": e["train_seconds"], "sample_replicas_per_second": e["sample_replicas_per_second"],
                    "code_version": t["code_version"]})
        row.update({f"versions.{k}": v for k, v in (t["versions"] or {}).items()})
        rows.append(row)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [{c: r.get(c) for c in columns} for r in rows]


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


_OPS = {"<=": operator.le, ">=": operator.ge, "!=": operator.ne, "=": operator.eq, "<": operator.lt, ">": operator.gt}
_COND = re.compile(r"^\s*([^<>=!\s]+)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$")


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


def where(rows: list[dict], conditions: Iterable[str]) -> list[dict]:
    """Keep rows meeting every ``COLUMN OP VALUE`` (OP: = != < <= > >=), e.g. ``rule.k=100``."""
    columns = list(rows[0]) if rows else []
    for text in conditions:
        check_condition(text)
        m = _COND.match(text)
        if not m:
            raise TableError(f"--where {text!r}: expected COLUMN=VALUE (or !=, <, <=, >, >=), e.g. rule.k=100")
        col, op, raw = m.groups()
        if rows and col not in columns:
            raise TableError(f"--where {text!r}: no column '{col}': expected one of {', '.join(columns)}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        fn = _OPS[op]

        def keep(r, col=col, value=value, fn=fn):
            v = r.get(col)
            try:
                return v is not None and fn(v, value)
            except TypeError:
                return fn(str(v), str(value))
        rows = [r for r in rows if keep(r)]
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def to_parquet(rows: list[dict], path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError("--format parquet needs pyarrow: pip install 'ferristor[results]'") from None
    columns = list(rows[0]) if rows else []
    from ..atomic import atomic_write
    with atomic_write(path) as f:  # a failed write (a full disk) leaves the previous file whole
        pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), f)


# The columns a text table shows: what varies, then the figures people look at.
_SHOWN = ("seed", "epoch", "test_accuracy", "val_accuracy", "ledger.fecap_ops.mean_sign_msb_cell", "ledger.memristor_ops.mean",
          "ledger.energy_nJ.per_device", "train_seconds")


def to_text(rows: list[dict]) -> str:
    if not rows:
        return "(no rows: no finished trial matches)"
    varying = [c for c in rows[0] if c not in _SHOWN and c not in ("trial", "replica", "step", "final")
               and not c.startswith(("ledger.", "versions.")) and c not in ("sample_replicas_per_second", "code_version")
               and len({json.dumps(r[c]) for r in rows}) > 1]
    cols = ["trial", *varying, *[c for c in _SHOWN if c in rows[0] and any(r[c] is not None for r in rows)]]
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
