"""Logging set-up for jobs and the CLI: one format, on stderr, with noisy libraries quieted.

Library modules only call ``logging.getLogger(__name__)``; entry points call
:func:`setup_logging` once, before building the Spark session or importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from typing import Any

from pool3.spark_internals import py4j_file

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, and ``exception`` when there is one; for schedulers and log shippers."""

    converter = time.gmtime  # type: ignore[assignment]  # a builtin: not bound as a method

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


# Loggers that are chatty at INFO/DEBUG and whose details we rarely need.
_QUIET = {
    "py4j": logging.WARNING,  # one line per JVM call at DEBUG, gateway chatter at INFO
    "tensorflow": logging.ERROR,
    "absl": logging.WARNING,
    "h5py": logging.WARNING,
    "matplotlib": logging.WARNING,
    "PIL": logging.INFO,
    "urllib3": logging.WARNING,
}


def _not_a_py4j_retry_notice(record: logging.LogRecord) -> bool:
    """Drop py4j's INFO "Exception while sending command." (with a traceback).

    py4j logs it through the *root* logger, so quieting ``py4j`` does not reach it, just
    before it retries the command on a new connection: the retry's outcome is what counts
    (a failure raises into pool3, which reports it as a lost connection). Seen at exit, when
    py4j's garbage-collection thread frees a Java object while the gateway shuts down: a
    traceback on stderr for nothing that went wrong. Warnings and errors are kept.
    """
    return not (
        record.name == "root" and record.levelno < logging.WARNING and py4j_file(record.pathname)
    )


def quiet_tensorflow_env() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ warnings and errors only) unless already set.

    Must run before TensorFlow is imported; Python workers started later inherit it in
    local mode. An explicit value in the environment wins, so ``TF_CPP_MIN_LOG_LEVEL=0``
    still works for debugging. ``TF_ENABLE_ONEDNN_OPTS`` is left alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# What TensorFlow 2.2x's C++ side writes to stderr on import whatever TF_CPP_MIN_LOG_LEVEL
# says (absl logs before its logging is initialised): notices, not warnings about the run.
# Matched on their own words, never on a file name, so that a fatal line of the same source
# file (e.g. cpu_feature_guard's "compiled to use AVX ... not available") still shows.
_TF_IMPORT_NOTICES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)
_TF_IMPORT_LOCK = threading.Lock()


def _forward(read_fd: int, out_fd: int) -> None:
    """Copy lines from ``read_fd`` to ``out_fd`` as they come, less the notices."""
    pending = b""
    with os.fdopen(read_fd, "rb", buffering=0) as source:
        while chunk := source.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                _write_kept(out_fd, line + b"\n")
    _write_kept(out_fd, pending)


def _write_kept(out_fd: int, line: bytes) -> None:
    text = line.decode("utf-8", "replace")
    if line and not any(notice in text for notice in _TF_IMPORT_NOTICES):
        with contextlib.suppress(OSError):  # the console went away
            os.write(out_fd, line)


def import_tensorflow() -> Any:
    """``import tensorflow``, with its start-up notices kept off the console.

    During the import, file descriptor 2 is a pipe whose lines a thread forwards to the real
    stderr as they come, without the notices in ``_TF_IMPORT_NOTICES``: a warning or error
    printed during the import still reaches the user, and does so at once (an import that
    aborts the process has shown what it printed up to the abort, bar the last instant).
    ``TF_CPP_MIN_LOG_LEVEL=0`` keeps everything. Thread-safe; cheap once imported.
    """
    with _TF_IMPORT_LOCK:
        if "tensorflow" in sys.modules:
            return sys.modules["tensorflow"]
        if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
            import tensorflow

            return tensorflow
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        reader = threading.Thread(target=_forward, args=(read_fd, saved), daemon=True)
        reader.start()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        try:
            import tensorflow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees its end
            reader.join(timeout=10)
            if not reader.is_alive():
                os.close(saved)
        return tensorflow


def setup_logging(*, verbose: bool = False, log_format: str = "text") -> None:
    """Configure the root logger: stderr, ``LOG_FORMAT`` (or one JSON object per line with
    ``log_format="json"``), INFO (DEBUG with ``verbose``).

    Idempotent: calling it again replaces the handler it installed before rather than
    adding a second one.

    Parameters
    ----------
    verbose : bool
        Log at DEBUG instead of INFO (quieted libraries keep their levels).
    log_format : {"text", "json"}
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {LOG_FORMATS}, got {log_format!r}")
    quiet_tensorflow_env()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_pool3", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    handler.addFilter(_not_a_py4j_retry_notice)
    handler._pool3 = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
