"""Errors raised by ferristor. Every message names the parameter, the value and what is allowed.

A :class:`ConfigError` keeps its parts (``field``, ``value``, ``allowed`` or ``reason``, and the
other settings it conflicts with in ``context``), so a front end can say it again in its own
words: the command line names ``--sigma -0.5`` where the library says
``TransferConfig.sigma_levels=-0.5`` (see :meth:`ConfigError.render`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

# Maps a config field path ("rule.k", "TransferConfig.sigma_levels") to how the user wrote it
# ("--k"), or None where the front end has no name for it.
Namer = Callable[[str], "str | None"]


class NegatedFlag(str):
    """A namer's name for a flag that turns its true/false field off (``--skip-zero-updates`` sets
    ``ledger.count_zero_updates`` False): a value of the field is said as the flag's own, negated."""

    def says(self, value: Any) -> Any:
        """The flag's value for the field's ``value`` (a bool negated; anything else as it is)."""
        return (not value) if isinstance(value, bool) else value


def _as_written(field: str, value: Any, namer: Namer | None) -> str:
    name = namer(field) if namer else None
    if name is None:
        return f"{field}={value!r}"
    if isinstance(name, NegatedFlag) and isinstance(value, bool):
        return name if name.says(value) else f"without {name}"
    if value is None or value is True:
        return name
    text = str(value)
    if text == "" or any(c.isspace() or not c.isprintable() for c in text):
        text = repr(text)
    return f"{name} {text}"


class FerristorError(Exception):
    """Base class of every error ferristor raises on purpose."""

    def render(self, namer: Namer | None = None) -> str:
        """The message, with config fields named by ``namer`` where it knows them."""
        return str(self)


class ConfigError(FerristorError, ValueError):
    """A configuration value is out of range, of the wrong type or unknown.

    ``allowed`` says what would be accepted; ``reason`` replaces the "is not allowed" form for a
    value that is well formed but unusable (a folder that cannot be written); ``context`` holds the
    other settings that make the value wrong ({"network.norm": "batch"}).
    """

    def __init__(self, field: str, value, allowed: str | None = None, *, reason: str | None = None,
                 context: dict[str, Any] | None = None):
        self.field, self.value, self.allowed, self.reason = field, value, allowed, reason
        self.context = dict(context or {})
        super().__init__(self.render())

    def render(self, namer: Namer | None = None) -> str:
        who = _as_written(self.field, self.value, namer)
        if self.reason is not None:
            return f"{who}: {self.reason}"
        with_ = "".join(f" with {_as_written(f, v, namer)}" for f, v in self.context.items())
        return f"{who} is not allowed{with_}: expected {self.allowed}"


class DivergedError(ConfigError):
    """The training loss became NaN or infinite at ``unit`` (step or epoch) ``at``: the learning rate
    ``field`` (value ``value``) is too large for the rest of the configuration — or another setting
    is beyond the simulation's 32-bit range. A ConfigError on the lr for Python callers; a command
    line that knows which options the user set says so instead (``cli.common.explain_divergence``)."""

    def __init__(self, field: str, lr, unit: str, at: int):
        self.unit, self.at = unit, at
        super().__init__(field, lr, f"a smaller value: the loss diverged ({unit} {at})")


class NonFiniteGradientError(ConfigError):
    """A hybrid parameter's gradient holds NaN or ±inf (a NaN input, a diverged loss): the optimizer
    refused the step before anything moved. Training loops that know their learning rate say it
    again as a :class:`DivergedError`."""

    def __init__(self, parameter: str):
        self.parameter = parameter
        super().__init__(f"{parameter} gradient", "NaN/inf",
                         reason="the step was refused and the chip left unchanged (drop this gradient with "
                                "opt.zero_grad()); a NaN or infinite input, or a loss that diverged: check the data "
                                "and lower the learning rate")


class ConfigMismatchError(ConfigError):
    """An output folder holds the state of a run with another configuration."""

    def __init__(self, field: str, value, what: str, differences: Iterable[tuple[str, Any, Any]], remedy: str):
        self.what, self.differences, self.remedy = what, list(differences), remedy
        super().__init__(field, value, reason="")

    # the remedy's placeholders: a command's options where a CLI renders the message, else what every
    # Python entry point takes (``fit(out=…)`` and ``train(cfg, out_dir)`` name the folder differently)
    CLI_NAMES = {"fresh": "--fresh", "out_dir": "--out"}
    PYTHON_NAMES = {"fresh": "fresh=True", "out_dir": "output folder"}

    def render(self, namer: Namer | None = None) -> str:
        def name(f: str) -> str:
            return (namer(f) if namer else None) or f

        def shown_as(f: str, old, new) -> str:
            n = name(f)
            if isinstance(n, NegatedFlag):  # the flag's values, not its field's (True there: it was given)
                old, new = n.says(old), n.says(new)
            return f"{n} ({_short(old)} there, {_short(new)} now)"
        shown = [shown_as(f, old, new) for f, old, new in self.differences[:8]]
        more = f" and {len(self.differences) - 8} more" if len(self.differences) > 8 else ""
        if namer:
            who = _as_written(self.field, self.value, namer)
            names = {k: namer(k) or v for k, v in self.CLI_NAMES.items()}
        else:
            who = f"the {self.PYTHON_NAMES.get(self.field, self.field)} {self.value!r}"
            names = self.PYTHON_NAMES
        remedy = self.remedy.format_map(names)
        return f"{who} holds {self.what} of another configuration, differing in {', '.join(shown)}{more}; {remedy}"


def _short(v: Any) -> str:
    if v is _ABSENT:
        return "absent"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class _Absent:
    def __repr__(self):
        return "absent"


_ABSENT = _Absent()
ABSENT = _ABSENT  # a field one of two configs lacks, in ConfigMismatchError.differences


class DataError(FerristorError, OSError):
    """A data file is missing, corrupt or of the wrong shape."""


class FerristorWarning(UserWarning):
    """Something the user asked for will not do what they may expect (e.g. a k larger than the run).

    ``field`` and ``value`` name the setting, so a front end can name it its own way."""

    def __init__(self, message: str, field: str | None = None, value=None):
        super().__init__(message)
        self.message, self.field, self.value = message, field, value

    def render(self, namer: Namer | None = None) -> str:
        if self.field is None:
            return self.message
        return f"{_as_written(self.field, self.value, namer)}: {self.message}"

    def __str__(self):
        return self.render()


class UnusedSettingsWarning(FerristorWarning):
    """Settings that change nothing given the rest of the config ('mode 'fp' has float weights …:
    --sigma 0.2 has no effect'): each named as the front end names it, so a command line shows the
    option as typed rather than the config path."""

    def __init__(self, why: str, changed: list):
        self.why, self.changed = why, [(f, v) for f, v in changed]
        super().__init__(self.render())

    def __reduce__(self):  # pickled whole (a sweep worker relays it so), not as the base's one-argument call
        return type(self), (self.why, self.changed)

    def render(self, namer: Namer | None = None) -> str:
        said = ", ".join(_as_written(f, v, namer) for f, v in self.changed)
        return f"{self.why}: {said} {'has' if len(self.changed) == 1 else 'have'} no effect"
