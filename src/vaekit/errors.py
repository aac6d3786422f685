"""User-facing errors.

A :class:`VaekitError` is a problem with the user's input (a flag, a file, a config key), not a bug.
The CLI prints its message on one line and exits with code 2; the library simply raises it.
"""

from __future__ import annotations


class VaekitError(Exception):
    """Bad input from the user: the message says what is wrong, where, and how to fix it."""

    exit_code = 2  # the CLI's exit status for this error


class ConfigError(VaekitError):
    """A config key, type or value is invalid."""


class DataError(VaekitError):
    """A data file or folder cannot be used."""


class CheckpointError(VaekitError):
    """A run folder or checkpoint is missing, torn, or does not match its config."""


class RunWriteError(VaekitError):
    """The run folder cannot be written (disk full, not a folder, read-only); earlier files are intact."""

    exit_code = 1


class RunBusyError(VaekitError):
    """Another process is writing the run folder (it holds the folder's lock)."""


class RankFailed(VaekitError):
    """A data-parallel rank died or lost contact with the others; the last checkpoint is kept."""

    exit_code = 1


class TrainingDiverged(VaekitError):
    """Too many non-finite losses or gradients in a row; the last good checkpoint is kept."""

    exit_code = 1


class TrainingInterrupted(VaekitError):
    """SIGINT/SIGTERM: training stopped after saving a checkpoint it can resume from."""

    exit_code = 130
