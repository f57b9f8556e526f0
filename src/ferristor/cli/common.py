"""What every ``ferristor`` command shares: how failures are reported, option types, names.

Exit status: 0 done; 2 bad input or a refused run (one line, ``error: …``, naming the option as
typed: ``--sigma -0.5``, not ``TransferConfig.sigma_levels``); 1 an unexpected error (one line and
the path of a log file holding the traceback).
"""
from __future__ import annotations

import errno
import functools
import math
import os
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import click

from ..errors import FerristorError, FerristorWarning

_NAMER = "ferristor.namer"  # ctx.meta key: how the running command names config fields


# --- naming config fields as the user typed them -------------------------------------------------

def names_options(**aliases: str):
    """Decorate a command's callback so errors name its options: a config field (``rule.k``,
    ``TransferConfig.sigma_levels``) is named by the option whose parameter matches its last part,
    or by ``aliases`` (field → parameter name) where they differ."""
    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            ctx = click.get_current_context()
            options = {p.name: p.opts[0] for p in ctx.command.params if isinstance(p, click.Option)}

            def namer(field: str) -> str | None:
                param = aliases.get(field, field.split(".")[-1])
                return options.get(param)
            ctx.meta[_NAMER] = namer
            return f(*args, **kwargs)
        return wrapper
    return decorate


# --- reporting ---------------------------------------------------------------------------------

_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


def log_folder() -> Path:
    from ..data.sources import cache_root
    return cache_root() / "logs"


def write_log(exc: BaseException) -> Path | None:
    """Write the traceback of ``exc`` with the command line and versions; return the file (None if nothing is writable)."""
    try:
        import ferristor
        version = ferristor.__version__
    except Exception:  # pragma: no cover
        version = "?"
    text = (f"ferristor {version}, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            f"command: {' '.join(shlex.quote(a) for a in sys.argv)}\ncwd: {os.environ.get('PWD', '?')}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    name = f"ferristor-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (log_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return folder / name
        except OSError:
            continue
    return None


def one_line(text: str) -> str:
    """``text`` with control characters (a newline in a path, say) escaped, so a message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def report_unexpected(e: Exception) -> None:
    path = write_log(e)
    where = f"the traceback is in {path}" if path else "no log file could be written"
    if isinstance(e, MemoryError):
        what = "out of memory; try fewer --seeds or a smaller --batch"
    elif (isinstance(e, OSError) and e.errno in _DISK) or "unexpected pos" in str(e):
        what = f"a write failed ({type(e).__name__}: {_first_line(e)}); is the file system full or read-only?"
    else:
        what = f"unexpected {type(e).__name__}: {_first_line(e)} — a bug; please report it"
    click.echo(one_line(f"error: {what} ({where})"), err=True)


class FerristorGroup(click.Group):
    """Runs a command and reports failures as the module doc says: never a traceback."""

    def invoke(self, ctx):
        def show(message, category, filename, lineno, file=None, line=None):
            if isinstance(message, FerristorWarning):
                click.echo(f"warning: {one_line(message.render(ctx.meta.get(_NAMER)))}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)
        try:
            with warnings.catch_warnings():
                shown = warnings.showwarning
                warnings.showwarning = show
                warnings.simplefilter("always", FerristorWarning)
                return super().invoke(ctx)
        except FerristorError as e:
            click.echo(f"error: {one_line(e.render(ctx.meta.get(_NAMER)))}", err=True)
            sys.exit(2)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:  # anything else is our bug or the machine's trouble: one line + a log
            report_unexpected(e)
            sys.exit(1)


# --- option types --------------------------------------------------------------------------------

class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and ±inf (which compare False against any bound)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class NonEmptyPath(click.Path):
    """A click.Path that refuses an empty string (which would otherwise mean "not given")."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path is not a folder.", param, ctx)
        if isinstance(value, str) and "\0" in value:
            self.fail(f"{value!r} holds a NUL character.", param, ctx)
        return super().convert(value, param, ctx)


class SeedList(click.ParamType):
    """'0-9', '3', '0,2,5-7' → a list of distinct seeds in 0…2^63−1."""

    name = "seeds"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        from ..errors import ConfigError
        from ..experiments.seeds import parse_seeds
        try:
            return parse_seeds(value)
        except ConfigError as e:
            self.fail(f"{value!r}: expected {e.allowed}.", param, ctx)


class IntList(click.ParamType):
    """Comma-separated integers ≥ ``lo``, e.g. '1,10,100'."""

    name = "integers"

    def __init__(self, lo: int = 1):
        self.lo = lo

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",")]
        ok = all(p.isascii() and p.isdigit() and len(p) <= 30 for p in parts)  # no 5,000-digit int() parse
        out = tuple(int(p) for p in parts) if ok else ()
        if not ok or not out or any(v < self.lo for v in out):
            self.fail(f"{value!r}: expected comma-separated integers ≥ {self.lo}, e.g. 1,10,100.", param, ctx)
        return out


class ChoiceList(click.ParamType):
    """Comma-separated names, each one of ``choices``."""

    name = "names"

    def __init__(self, choices):
        self.choices = tuple(choices)

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        out = tuple(p.strip() for p in str(value).split(","))
        bad = [p for p in out if p not in self.choices]
        if bad:
            self.fail(f"{', '.join(repr(b) for b in bad)} not among {', '.join(self.choices)}.", param, ctx)
        return out


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def require_plot(what: str) -> None:
    """A clear error naming the extra when matplotlib is missing (before any work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FerristorError(f"{what} needs matplotlib, which is not installed: pip install 'ferristor[plot]'") from None

