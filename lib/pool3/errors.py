"""Error types and the exit codes a scheduler sees.

Every error a user can cause is a :class:`Pool3Error` whose message says what was
wrong, what was expected and how to fix it. The CLI turns it into one line on
stderr and the exit code of its class (see README, "Exit codes").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pool3.spark_internals import py4j_file, py4j_network_error


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


#: Text of a failure caused by memory: the JVM's, a Python worker's, a cluster manager's.
_MEMORY = re.compile(
    r"java\.lang\.OutOfMemoryError[^\n]*|Java heap space|GC overhead limit exceeded|"
    r"\bMemoryError[^\n]*|Container killed[^\n]*memory[^\n]*|exceeding memory limits[^\n]*"
)
#: What a Python driver sees when the JVM it talks to through py4j has died.
_JVM_GONE = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError)

MEMORY_SETTINGS = (
    "raise spark.driver.memory (in local mode it is the executors' memory too) and "
    "spark.executor.memory (the profile's [spark] table, or --conf spark.driver.memory=8g); "
    "a Python worker or a container killed for memory needs spark.executor.memoryOverhead "
    "(or spark.executor.pyspark.memory) instead; for training, train.solver = 'spark' "
    "caches the rows once as float32 (MLlib caches them as doubles for every class fitted "
    "at once)"
)


def _in_py4j(err: BaseException) -> bool:
    """Whether ``err`` is py4j's network error or was raised inside py4j (a call to the JVM)."""
    if py4j_network_error(err):
        return True
    if not isinstance(err, _JVM_GONE):
        return False
    tb = err.__traceback__
    while tb is not None:
        if py4j_file(tb.tb_frame.f_code.co_filename):
            return True
        tb = tb.tb_next
    return False


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__  # type: ignore[assignment]


def _text(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:  # py4j's Java errors fail str() once their JVM is gone
        return ""


def as_resource_error(err: BaseException, what: str) -> ResourceError | None:
    """``err`` (or an error it was raised from) as a :class:`ResourceError` when Spark ran
    out of memory or lost its JVM while doing ``what``; None for any other error. The
    traceback goes to the log at DEBUG (``--verbose``)."""
    found = _classify(err, what)
    if found is not None:
        logging.getLogger("pool3").debug("%s", found, exc_info=err)
    return found


def _classify(err: BaseException, what: str) -> ResourceError | None:
    chain = list(_chain(err))
    for e in chain:
        if isinstance(e, ResourceError):  # reported once already; later errors follow from it
            return e
    for e in chain:
        found = _MEMORY.search(_text(e))
        if found:
            return ResourceError(
                f"Spark ran out of memory while {what} ({found.group(0).strip()}): "
                f"{MEMORY_SETTINGS}"
            )
    for e in chain:
        if _in_py4j(e):
            first = (_text(e).splitlines() or ["no message"])[0]
            return ResourceError(
                f"the connection to Spark's JVM was lost while {what} ({type(e).__name__}: "
                f"{first}): the JVM most often dies of java.lang.OutOfMemoryError (the log "
                f"above says so if it did): {MEMORY_SETTINGS}"
            )
    return None


@contextmanager
def spark_failure(what: str) -> Iterator[None]:
    """Re-raise an out-of-memory or lost-JVM failure inside the block as ResourceError."""
    try:
        yield
    except Pool3Error:
        raise
    except Exception as err:
        resource = as_resource_error(err, what)
        if resource is None:
            raise
        raise resource from err
