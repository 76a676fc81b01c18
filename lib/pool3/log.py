"""Logging set-up for jobs and the CLI: one format, on stderr, with noisy libraries quieted.

Library modules only call ``logging.getLogger(__name__)``; entry points call
:func:`setup_logging` once, before building the Spark session or importing TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

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


def quiet_tensorflow_env() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ warnings and errors only) unless already set.

    Must run before TensorFlow is imported; Python workers started later inherit it in
    local mode. An explicit value in the environment wins, so ``TF_CPP_MIN_LOG_LEVEL=0``
    still works for debugging. ``TF_ENABLE_ONEDNN_OPTS`` is left alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# What TensorFlow 2.2x's C++ side writes to stderr on import whatever TF_CPP_MIN_LOG_LEVEL
# says (absl logs before its logging is initialised): notices, not warnings about the run.
_TF_IMPORT_NOTICES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
)


def import_tensorflow() -> Any:
    """``import tensorflow``, with its start-up notices kept off the console.

    The import's native stderr (file descriptor 2) goes to a temporary file and is written
    back afterwards without the notices in ``_TF_IMPORT_NOTICES``, so a warning or error
    printed during the import still reaches the user. ``TF_CPP_MIN_LOG_LEVEL=0`` keeps
    everything. Returns the module; cheap once it is imported.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow

        return tensorflow
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not any(notice in line for notice in _TF_IMPORT_NOTICES)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
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
    handler._pool3 = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
