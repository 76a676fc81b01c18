"""Converted-weights cache: ``.npz`` of folded TF weights + a JSON manifest, under $POOL3_HOME.

The TorchScript archive is read and converted once (a few seconds); afterwards a driver gets
the model bytes from the cache by reading one file and checking its SHA-256 (well under a
second). Files are written atomically (temporary name + ``os.replace``), so a reader never sees
a half-written cache; an unreadable or mismatching cache is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pool3.config.home import pool3_home

log = logging.getLogger(__name__)


CACHE_FORMAT = 1


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise named arrays to uncompressed ``.npz`` bytes (loadable without pickle)."""
    buf = io.BytesIO()
    np.savez(buf, **dict(arrays))  # type: ignore[arg-type]
    return buf.getvalue()


def load_npz_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`npz_bytes`; refuses object arrays (``allow_pickle=False``)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def cached_weights(
    name: str,
    *,
    source_sha256: str,
    manifest_extra: Mapping[str, Any],
    build: Callable[[], Mapping[str, np.ndarray]],
    home: str | os.PathLike[str] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Return ``(npz_bytes, manifest)`` for converted weights, building and caching on a miss.

    The cache entry is ``<home>/<name>-<source_sha256[:16]>.{npz,json}``. It is used only if
    the manifest parses, names the same source SHA-256 and cache format, and the npz bytes hash
    to the manifest's ``npz_sha256``; otherwise it is rebuilt with a warning saying why.
    """
    base = pool3_home(home) / f"{name}-{source_sha256[:16]}"
    npz_path, json_path = base.with_suffix(".npz"), base.with_suffix(".json")
    reason = "not cached yet"
    if json_path.exists() and npz_path.exists():
        try:
            manifest = json.loads(json_path.read_text())
            data = npz_path.read_bytes()
            ok = (
                manifest.get("cache_format") == CACHE_FORMAT
                and manifest.get("source_sha256") == source_sha256
                and hashlib.sha256(data).hexdigest() == manifest.get("npz_sha256")
            )
            if ok:
                return data, manifest
            reason = "cache entry does not match its manifest"
        except (OSError, ValueError) as err:
            reason = f"cache entry unreadable ({err})"
        log.warning("rebuilding converted weights %s: %s", base, reason)
    else:
        log.info("converting weights into %s (%s)", base, reason)
    data = npz_bytes(build())
    manifest = {
        "cache_format": CACHE_FORMAT,
        "source_sha256": source_sha256,
        "npz_sha256": hashlib.sha256(data).hexdigest(),
        **manifest_extra,
    }
    try:
        atomic_write(npz_path, data)
        atomic_write(json_path, json.dumps(manifest, indent=2, sort_keys=True).encode())
    except OSError as err:
        log.warning("cannot write weights cache %s (%s); continuing without it", base, err)
    return data, manifest
