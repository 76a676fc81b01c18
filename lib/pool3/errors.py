"""Error types and the exit codes a scheduler sees.

Every error a user can cause is a :class:`Pool3Error` whose message says what was
wrong, what was expected and how to fix it. The CLI turns it into one line on
stderr and the exit code of its class (see README, "Exit codes").
"""

from __future__ import annotations


class Pool3Error(Exception):
    """Base of all expected failures; ``exit_code`` is what the process returns."""

    exit_code = 1


class ConfigError(Pool3Error):
    """Invalid configuration or command-line arguments."""

    exit_code = 2


class InputError(Pool3Error):
    """Input path missing, unreadable, empty or of the wrong shape."""

    exit_code = 3


class OutputError(Pool3Error):
    """Output exists (without ``--mode overwrite``) or is not writable."""

    exit_code = 4


class ModelError(Pool3Error):
    """Model weights missing, corrupt, of another architecture or fingerprint."""

    exit_code = 5


class ThresholdError(Pool3Error):
    """The run finished but failed a configured quality gate (error rate, accuracy)."""

    exit_code = 6


class DataError(Pool3Error):
    """Training data that cannot give a valid classifier (one class, NaN, ...)."""

    exit_code = 7


class ResourceError(Pool3Error):
    """Spark ran out of memory or lost an executor or its JVM: says which setting to raise."""

    exit_code = 8
