"""Error types and the exit codes a scheduler sees.

Every error a user can cause is a :class:`Pool3Error` whose message says what was
wrong, what was expected and how to fix it. The CLI turns it into one line on
stderr and the exit code of its class (see README, "Exit codes"). It also holds the one
classification of what Spark, py4j, gRPC and pyarrow raise (hence its size, over ~300 lines).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
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
        if _STOPPED.search(_text(e)):
            return ResourceError(
                f"Spark's context was stopped while {what}: a java.lang.OutOfMemoryError "
                f"elsewhere in the JVM stops it (the log above says so if it did): "
                f"{MEMORY_SETTINGS}"
            )
        if lost := _EXECUTORS_LOST.search(_text(e)):
            return ResourceError(
                f"Spark lost executors past its task retries while {what} ({lost.group(0)}): "
                "an executor most often dies of memory or with its machine: raise "
                "spark.executor.memory / spark.executor.memoryOverhead (or lower "
                "featurize.worker_memory_mb), spark.task.maxFailures to retry more, and re-run"
            )
        if (server := _connect_gone(e)) is not None:
            return ResourceError(
                f"the Spark Connect server {server} stopped answering while {what}: it was "
                "stopped or died (most often of java.lang.OutOfMemoryError: see its log); "
                "start it again (or check spark.remote) and re-run"
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


#: What a call sees after the SparkContext was stopped under it (by a fatal error, most often
#: an OutOfMemoryError in another thread), in whichever order the two reach pool3.
_STOPPED = re.compile(
    r"dagScheduler\(\)\"? is null|Cannot call methods on a stopped SparkContext|"
    r"SparkContext was shut down|SparkContext has been shutdown"
)
#: A job that failed because its executors died more often than spark.task.maxFailures allows.
_EXECUTORS_LOST = re.compile(r"ExecutorLostFailure \(executor [^)]*\)")
_GRPC_GONE = re.compile(r"StatusCode\.UNAVAILABLE|\bUNAVAILABLE\b|Connection refused")
_PEER = re.compile(r"(?:ipv[46]:|sc://|unix:)[^\s,\"')]+")


def _connect_gone(err: BaseException) -> str | None:
    """The address of the Spark Connect server ``err`` says is unreachable (gRPC
    UNAVAILABLE), ``"(address unknown)"`` when it names none; None for another error."""
    kinds = {c.__name__ for c in type(err).__mro__}
    if not kinds & {"RpcError", "SparkConnectGrpcException", "SparkConnectException"}:
        return None
    text = _text(err)
    if not _GRPC_GONE.search(text):
        return None
    peer = _PEER.search(text)
    return peer.group(0).rstrip(":.") if peer else "(address unknown)"


# --- I/O on outputs (issue 38): a full disk, a read-only file system, no permission, quota ---

_IO_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}
_IO_FIX = {
    "no space left on device": "free space there",
    "disk quota exceeded": "free space there or raise the quota",
    "read-only file system": "mount it writable",
    "permission denied": "fix its permissions",
}
_IO_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|Read-only file system|Permission denied"
)


def as_output_error(err: BaseException, output: str | None) -> OutputError | None:
    """``err`` (or an error it was raised from: Python's OSError, pyarrow's, the JVM's text
    in a Py4JJavaError) as an :class:`OutputError` naming ``output`` when writing failed for
    lack of space, quota or permission, or on a read-only file system; None otherwise. A
    permission error counts only where its text names the output (reading an input can be
    denied too). The traceback goes to the log at DEBUG."""
    found = None
    for e in _chain(err):
        if isinstance(e, OutputError):
            return e
        if isinstance(e, OSError) and e.errno in _IO_ERRNOS:
            found = found or _IO_ERRNOS[e.errno]
        elif match := _IO_TEXT.search(_text(e)):
            named = output is None or os.path.basename(output.rstrip("/")) in _text(e)
            if match.group(0) != "Permission denied" or named:
                found = found or match.group(0).lower()
    if found is None:
        return None
    where = output or "the output"
    free = _free_space(output)
    result = OutputError(
        f"cannot write {where}: {found}{free}; nothing is committed: {_IO_FIX[found]}, or "
        "choose another --output"
    )
    logging.getLogger("pool3").debug("%s", result, exc_info=err)
    return result


@contextmanager
def output_failure(output: str) -> Iterator[None]:
    """Re-raise a write that failed for space, quota, permission or a read-only file system
    inside the block as :class:`OutputError` naming ``output`` (:func:`as_output_error`)."""
    try:
        yield
    except Pool3Error:
        raise
    except Exception as err:
        found = as_output_error(err, output)
        if found is None:
            raise
        raise found from err


def _free_space(output: str | None) -> str:
    """`` (N MiB free on DIR)`` for a local output, else ``""``."""
    if not output or ("://" in output and not output.startswith("file:")):
        return ""
    path = os.path.abspath(re.sub(r"^file:(//)?", "", output))
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return ""
    return f" ({usage.free / 2**20:.1f} MiB free on {path})"


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


# --- Damaged inputs (a part that Spark cannot read) -------------------------------------

#: What Spark, Hadoop and pyarrow say of a file that is not (or no longer) valid Parquet.
_DAMAGED = re.compile(
    r"FAILED_READ_FILE|CANNOT_READ_FILE_FOOTER|ChecksumException|Checksum error|"
    r"is not a Parquet file|Parquet magic bytes not found|Couldn't deserialize thrift"
)
#: The file a message names (Spark's "reading file <path>", Hadoop's "Checksum error: <path>").
_DAMAGED_FILE = re.compile(r"((?:[a-z][a-z0-9+.-]*:)?/[^\s'\"\]\[,]*?)\.?(?:\s|$|['\"\],])")


def as_damaged_input(err: BaseException, what: str) -> InputError | None:
    """``err`` (or an error it was raised from) as an :class:`InputError` naming the part
    when a file read while ``what`` is damaged (unreadable footer, checksum error, not
    Parquet); None for any other error. The traceback goes to the log at DEBUG."""
    for e in _chain(err):
        if isinstance(e, InputError):
            return e
        text = _text(e)
        if not _DAMAGED.search(text):
            continue
        files = [m for m in _DAMAGED_FILE.findall(text) if "part-" in m or ".parquet" in m]
        part = files[0] if files else "one of its files"
        logging.getLogger("pool3").debug("damaged input", exc_info=err)
        return InputError(
            f"a damaged input while {what}: {part} cannot be read (its footer or checksum is "
            "wrong: the table changed after it was committed, e.g. a part truncated or "
            "overwritten); re-run pool3 featurize into a new output (or onto it with "
            "--mode overwrite)"
        )
    return None


@contextmanager
def damaged_input(what: str) -> Iterator[None]:
    """Re-raise a damaged input inside the block as InputError (:func:`as_damaged_input`)."""
    try:
        yield
    except Pool3Error:
        raise
    except Exception as err:
        damaged = as_damaged_input(err, what)
        if damaged is None:
            raise
        raise damaged from err
