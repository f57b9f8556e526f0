"""Errors raised by ferristor. Every message names the parameter, the value and what is allowed."""


class FerristorError(Exception):
    """Base class of every error ferristor raises on purpose."""


class ConfigError(FerristorError, ValueError):
    """A configuration value is out of range, of the wrong type or unknown."""

    def __init__(self, field: str, value, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={value!r} is not allowed: expected {allowed}")


class DataError(FerristorError, OSError):
    """A data file is missing, corrupt or of the wrong shape."""
