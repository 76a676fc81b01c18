"""Run manifests: what ran, on what, with which versions, for how long.

A manifest is a plain JSON-able dict; :func:`pool3.storage.outputs.commit_output` stores it as
``_pool3_manifest.json`` in the output (adding ``committed_at``), next to ``_SUCCESS``.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from pool3.config import Config
from pool3.version import __version__

MANIFEST_VERSION = 1
_DISTRIBUTIONS = ("pyspark", "numpy", "pandas", "pyarrow", "scikit-learn", "pillow")
_IMPORTED_ONLY = ("tensorflow", "torch")  # reported only if this process imported them


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second (``2026-05-09T07:35:25+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str | None]:
    """Versions of Python, pool3 and the libraries a run depends on (None: not installed)."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "pool3": __version__,
    }
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    for name in _IMPORTED_ONLY:
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def jsonable(value: Any) -> Any:
    """``value`` with mappings, sequences, NumPy scalars, paths and datetimes made JSON-able.

    Non-finite floats become None (JSON has no NaN); unknown objects become ``str(value)``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # NumPy scalar or 0-d array
        return jsonable(value.item())
    return str(value)


def build_run_manifest(
    *,
    run_id: str | None,
    command: str,
    inputs: Mapping[str, Any] | Sequence[str],
    counts: Mapping[str, Any],
    durations: Mapping[str, float],
    config: Config,
    model_fingerprint: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of one run, ready for :func:`pool3.storage.outputs.commit_output`.

    Parameters
    ----------
    run_id : str or None
        The ``--run-id``, if any.
    command : str
        What ran, e.g. ``"featurize"`` or the full command line.
    inputs : mapping or sequence of str
        Input paths (``{"images": "hdfs://nn/imgs"}``) and anything that identifies them.
    counts : mapping of str to int (NumPy integers accepted)
        E.g. ``{"images": 1200, "failed": 3}``.
    durations : mapping of str to float
        Seconds per phase, e.g. ``{"featurize": 81.2, "total": 95.0}``.
    config : Config
        The resolved configuration; stored redacted (:meth:`Config.to_dict`).
    model_fingerprint : str or None
        Identifies the feature model's weights (features from different weights do not mix).
    extra : mapping, optional
        Anything else the command wants recorded (metrics, label counts).
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "command": command,
        "created_at": utc_now(),
        "host": socket.gethostname(),
        "inputs": jsonable(inputs),
        "counts": jsonable(counts),
        "durations_s": {str(k): round(float(v), 3) for k, v in durations.items()},
        "config": config.to_dict(),
        "model_fingerprint": model_fingerprint,
        "versions": library_versions(),
        "extra": jsonable(extra or {}),
    }
