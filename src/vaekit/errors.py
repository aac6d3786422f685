"""User-facing errors.

A :class:`VaekitError` is a problem with the user's input (a flag, a file, a config key), not a bug.
The CLI prints its message on one line and exits with code 2; the library simply raises it.
"""

from __future__ import annotations


class VaekitError(Exception):
    """Bad input from the user: the message says what is wrong, where, and how to fix it."""


class ConfigError(VaekitError):
    """A config key, type or value is invalid."""


class DataError(VaekitError):
    """A data file or folder cannot be used."""


class CheckpointError(VaekitError):
    """A run folder or checkpoint is missing, torn, or does not match its config."""
