"""What every ``ferristor`` command shares: how failures are reported, option types, names.

Exit status: 0 done; 2 bad input or a refused run (one line, ``error: …``, naming the option as
typed: ``--sigma -0.5``, not ``TransferConfig.sigma_levels``; Click's own usage errors, an unknown
option or a missing argument, in the same style after Click's usage and hint lines); 1 an
unexpected error (one line and the path of a log file holding the traceback); 130 (128 + SIGINT) interrupted by Ctrl-C (one line:
``interrupted``, and for a command that resumes, that rerunning it resumes); 141 (128 + SIGPIPE, as a
shell reports any program stopped by a closed pipe) the reader of the output went away
(``ferristor params | head -1``), with no message.
"""
from __future__ import annotations

import contextlib
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

from ..cpus import available_cpus as cpu_count  # noqa: F401 (the commands' bound: one count with the configs)
from ..errors import ConfigError, DivergedError, FerristorError, FerristorWarning

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


def name_fields(namer) -> None:
    """Replace how the running command names config fields in its errors and warnings."""
    click.get_current_context().meta[_NAMER] = namer


def current_namer():
    """How the running command names config fields (``names_options``), or None outside one."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_NAMER) if ctx is not None else None


# --- reporting ---------------------------------------------------------------------------------

_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# SQLite's words for the same troubles (a sweep's results store): SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR
_SQLITE_DISK = ("database or disk is full", "attempt to write a readonly database", "disk i/o error")


def _disk_trouble(e: BaseException) -> bool:
    """Whether ``e`` is a write that failed for want of room or permission, or the disk's own error."""
    if isinstance(e, OSError):
        return e.errno in _DISK
    import sqlite3
    return isinstance(e, sqlite3.OperationalError) and str(e).strip().lower().startswith(_SQLITE_DISK)


def log_folder() -> Path:
    """FERRISTOR_CACHE/logs; the default cache's where the variable is refused (a blank value): a crash
    report must not itself fail on the setting that may have caused it."""
    from ..data.sources import cache_root
    from ..errors import FerristorError
    try:
        return cache_root() / "logs"
    except FerristorError:
        return Path.home() / ".cache" / "ferristor" / "logs"


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
    elif _disk_trouble(e) or "unexpected pos" in str(e):
        what = f"a write failed ({type(e).__name__}: {_first_line(e)}); is the file system full or read-only?"
    else:
        what = f"unexpected {type(e).__name__}: {_first_line(e)} — a bug; please report it"
    click.echo(one_line(f"error: {what} ({where})"), err=True)


# numpy's floating-point warnings: a setting beyond float32's range (--sigma 1e300), not something to debug
_NUMERIC = ("overflow encountered", "invalid value encountered", "divide by zero encountered", "underflow encountered")


def _numeric_trouble(message, category) -> bool:
    return issubclass(category, RuntimeWarning) and str(message).startswith(_NUMERIC)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer): nothing to flush into a pipe
        pass


# the commands that pick up where an interrupted run stopped when given the same command again
RESUMING = frozenset({"train", "reproduce", "sweep", "compare-rules", "fig6", "pretrain"})


def interrupted_line(command: str | None) -> str:
    if command in RESUMING:
        return "interrupted: rerun the same command to resume from the last checkpoint"
    return "interrupted"


def show_click_error(e: click.ClickException) -> None:
    """Click's own error (a usage error: an unknown option, a missing argument, a value not among the
    choices) in ferristor's words: Click's usage and hint lines where it has them, then ``error: …``,
    as every other error a user sees (Click's ``Error: …`` would be the one line in another style)."""
    ctx = getattr(e, "ctx", None)
    if ctx is not None:
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            hint = f"Try '{ctx.command_path} {max(ctx.command.get_help_option_names(ctx), key=len)}' for help.\n"
        click.echo(f"{ctx.get_usage()}\n{hint}", err=True, color=ctx.color)
    click.echo(f"error: {e.format_message()}", err=True)


# a group given no command shows its help (Click ≥ 8.2 raises it as a usage error; 8.1 exits 0 itself)
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class FerristorGroup(click.Group):
    """Runs a command and reports failures as the module doc says: never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's main, with Click's own errors said as ferristor's are (:func:`show_click_error`),
        with the status Click gives them (2 for a usage error): Click's standalone mode would print
        them itself, as ``Error: …``, so it runs without it here and this does the rest of its work.
        The one place every Click error passes, the group's own options' included (``ferristor
        --bogus`` fails before :meth:`invoke`); ``ferristor`` (the console script) and CliRunner both
        come through it."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            # without standalone mode Click returns the command's value (None: no command returns
            # one) or the status of a ctx.exit() (--help, --version: 0) instead of exiting
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as e:  # `ferristor device` alone: the help, not an error
            e.show()
            sys.exit(e.exit_code)
        except click.ClickException as e:
            show_click_error(e)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:  # Ctrl-C while Click parses the command line (invoke handles it later)
            click.echo(interrupted_line(None), err=True)
            sys.exit(130)
        sys.exit(status if isinstance(status, int) and not isinstance(status, bool) else 0)

    def invoke(self, ctx):
        numeric: set[str] = set()
        said: set[str] = set()

        def show(message, category, filename, lineno, file=None, line=None):
            if isinstance(message, FerristorWarning):
                text = f"warning: {one_line(message.render(ctx.meta.get(_NAMER)))}"
                if text not in said:  # once: a sweep checks each point's config several times
                    said.add(text)
                    click.echo(text, err=True)
            elif _numeric_trouble(message, category):
                if str(message) not in numeric:  # once, not once per kernel that meets the same value
                    numeric.add(str(message))
                    click.echo(f"warning: numeric trouble ({one_line(str(message))}): a setting may be beyond "
                               "the range of the simulation's 32-bit numbers; its results may be meaningless", err=True)
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
        except (KeyboardInterrupt, click.exceptions.Abort):  # Ctrl-C: not an error, and no traceback
            # (click's own handling would say "Aborted!" with status 1, the status of an unexpected error)
            newline = "\n" if _isatty(sys.stderr) else ""  # off the line of a progress bar, after the ^C
            click.echo(f"{newline}{interrupted_line(ctx.invoked_subcommand)}", err=True)
            sys.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit):
            raise
        except BrokenPipeError:  # the reader of our output is gone (| head): not an error to report to anyone
            _quiet_stdout()
            sys.exit(141)
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


def comma_list(text: str, field: str, example: str, *, distinct: bool = True) -> list[str]:
    """The items of a comma-separated option, stripped. An empty list or item is refused (it would run
    nothing, or fall back to the defaults, silently), and with ``distinct`` an item given twice (it
    would only repeat work): a ConfigError naming ``field``."""
    items = [t.strip() for t in str(text).split(",")]
    if not all(items):
        raise ConfigError(field, text, f"a non-empty comma-separated list without empty items, e.g. {example}")
    if distinct:
        no_repeats(items, field, text)
    return items


def no_repeats(values, field: str, text) -> None:
    """Refuse a value given twice; called on converted values too, where '100,1e2' are one k."""
    seen = []
    for v in values:
        if v in seen:
            raise ConfigError(field, text, f"each value once ({v} is given twice)")
        seen.append(v)


class IntList(click.ParamType):
    """Comma-separated distinct integers ≥ ``lo``, e.g. '1,10,100'."""

    name = "integers"

    def __init__(self, lo: int = 1):
        self.lo = lo

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            parts = comma_list(value, "", "1,10,100", distinct=False)
            ok = all(p.isascii() and p.isdigit() and len(p) <= 30 for p in parts)  # no 5,000-digit int() parse
            out = tuple(int(p) for p in parts) if ok else ()
            if not ok or any(v < self.lo for v in out):
                self.fail(f"{value!r}: expected comma-separated integers ≥ {self.lo}, e.g. 1,10,100.", param, ctx)
            no_repeats(out, "", value)
        except ConfigError as e:
            self.fail(f"{value!r}: expected {e.allowed}.", param, ctx)
        return out


class ChoiceList(click.ParamType):
    """Comma-separated distinct names, each one of ``choices``."""

    name = "names"

    def __init__(self, choices):
        self.choices = tuple(choices)

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            out = tuple(comma_list(value, "", ",".join(self.choices[:2])))
        except ConfigError as e:
            self.fail(f"{value!r}: expected {e.allowed}.", param, ctx)
        bad = [p for p in out if p not in self.choices]
        if bad:
            self.fail(f"{', '.join(repr(b) for b in bad)} not among {', '.join(self.choices)}.", param, ctx)
        return out


# --- output paths --------------------------------------------------------------------------------

def prepare_folder(path, field: str) -> Path:
    """A folder a command writes into, created and proven writable before any work, as ``train`` does
    its --out (``run_folder.prepare``); errors name ``field`` and the path as typed."""
    from ..experiments.run_folder import prepare
    try:
        return prepare(path)
    except ConfigError as e:
        raise ConfigError(field, os.fspath(path), reason=e.reason) from None


def prepare_file_folder(path, field: str) -> Path:
    """The folder of a file a command writes, created and proven writable before any work."""
    folder = Path(path).parent
    if folder.exists() and not folder.is_dir():  # prepare would name the folder, not the file typed
        raise ConfigError(field, os.fspath(path), reason="cannot be created (a part of the path is a file, not a folder)")
    try:
        return prepare_folder(folder, field)
    except ConfigError as e:
        raise ConfigError(field, os.fspath(path), reason=e.reason) from None


# --- a run that diverged -------------------------------------------------------------------------

# options that cannot make a loss diverge: not worth a user's look
_NOT_A_CAUSE = {"out", "fresh", "progress", "data_dir", "threads", "test_limit", "eval_every", "eval_batch", "validation_seed",
                "table_only", "plot", "rate", "seeds", "epochs", "lr", "datasets"}  # compare-rules names the dataset


def options_set() -> list[str]:
    """The running command's options the user gave, as typed-ish (``--sigma 1e+300``), leaving out
    those that only say where and how much (--out, --threads …)."""
    from click.core import ParameterSource
    ctx = click.get_current_context()
    shown = []
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or p.name in _NOT_A_CAUSE or \
                ctx.get_parameter_source(p.name) is not ParameterSource.COMMANDLINE:
            continue
        v = ctx.params.get(p.name)
        if p.is_flag:
            shown.append(p.opts[0] if v or not p.secondary_opts else p.secondary_opts[0])
        else:
            shown.append(f"{p.opts[0]} {v}" if not isinstance(v, str) or v.strip() else f"{p.opts[0]} {v!r}")
    return shown


@contextlib.contextmanager
def explain_divergence(lower: str, where: str = ""):
    """Report a diverged loss as what it is — not as an out-of-range --lr, which the user may never
    have set — with the lr used, ``lower`` (how to lower it) and the options the user did set."""
    try:
        yield
    except DivergedError as e:
        check = options_set()
        hint = f"lower {lower}" + (f" or check {', '.join(check)}" if check else "")
        raise FerristorError(f"the loss diverged at {e.unit} {e.at} ({where}lr {e.value}): {hint}") from None


def require_plot(what: str) -> None:
    """A clear error naming the extra when matplotlib is missing (before any work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FerristorError(f"{what} needs matplotlib, which is not installed: pip install 'ferristor[plot]'") from None

