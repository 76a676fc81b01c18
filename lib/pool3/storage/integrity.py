"""Is a committed table still what was committed? Its parts against its manifest.

:func:`pool3.storage.commit.commit_output` records in ``_pool3_manifest.json`` the name and
size of every data file of the output (``parts``: every file Spark's readers would read,
i.e. none whose name, or a folder's on its way, starts with ``_`` or ``.``). Before a
committed table is read (``train``, incremental ``featurize``), :func:`check_parts` lists
the folder (:mod:`pool3.storage.fs`: Classic, Connect, any URI) and refuses one whose parts
are missing, added or of another size, before Spark or pyarrow opens any of them.

Sizes only: a Parquet file carries no cheap whole-file checksum (its page CRCs are optional
and Spark does not write them), and hashing every part would read the whole table once
more. A part damaged without changing its size is caught when Spark reads it
(:func:`pool3.errors.as_damaged_input`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pool3.errors import InputError
from pool3.storage.fs import FS_ERRORS, file_sizes, why

PARTS_KEY = "parts"


def _visible(relative: str) -> bool:
    return not any(p.startswith(("_", ".")) for p in relative.split("/"))


def data_files(spark: Any, path: str) -> dict[str, int]:
    """``{relative path: size}`` of the files under ``path`` that Spark's readers read."""
    return {name: size for name, size in file_sizes(spark, path).items() if _visible(name)}


def check_parts(spark: Any, path: str, manifest: Mapping[str, Any], *, fix: str) -> bool:
    """Refuse (InputError) the table at ``path`` if its parts differ from ``manifest``'s.

    Returns False, checking nothing, for a manifest written before parts were recorded
    (the caller falls back on its row count); True when every part is as committed.
    ``fix`` ends the message (what to run instead).
    """
    recorded = manifest.get(PARTS_KEY)
    if not isinstance(recorded, dict):
        return False
    try:
        found = data_files(spark, path)
    except FS_ERRORS as err:
        raise InputError(f"cannot list the parts of {path!r}: {why(err)}") from err
    missing = sorted(set(recorded) - set(found))
    added = sorted(set(found) - set(recorded))
    changed = sorted(n for n in set(found) & set(recorded) if found[n] != recorded[n])
    if not (missing or added or changed):
        return True
    details = []
    for label, names in (("missing", missing), ("changed size", changed), ("added", added)):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            details.append(f"{label}: {shown}")
    raise InputError(
        f"{path!r} changed after it was committed ({'; '.join(details)}): the table is "
        f"damaged or was edited; {fix}"
    )
