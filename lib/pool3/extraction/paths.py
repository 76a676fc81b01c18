"""Rows that name images (a path/URI column, or their bytes in ``content``) to the kernel's
files frame: what :func:`pool3.featurize` and the MLflow model (:mod:`pool3.tracking.flavor`)
feed :mod:`pool3.extraction.kernel`. Each path is read here, through :mod:`pool3.storage.files`
(any URI pyarrow.fs opens); a row that cannot be read keeps its error, it is never dropped.
"""

from __future__ import annotations

import pandas as pd

from pool3.errors import ConfigError
from pool3.storage.files import (
    MISSING,
    UNREADABLE,
    FileSystemUnavailable,
    read_file,
    resolve,
)


def read_path(uri: str, max_bytes: int) -> tuple[bytes | None, int, str | None]:
    """(bytes, length, None), (None, length, None) when too large, or (None, 0, error)."""
    from pyarrow import fs as pafs

    try:
        root = resolve(uri)
    except FileSystemUnavailable:
        raise  # the store itself cannot be reached from this worker: not one row's fault
    except ConfigError as err:  # a malformed path or URI in this row
        return None, 0, f"{UNREADABLE}: {err}"
    try:
        info = root.filesystem().get_file_info(root.fs_path)
    except OSError as err:
        return None, 0, f"{UNREADABLE}: {err}"
    if info.type == pafs.FileType.NotFound:
        return None, 0, f"{MISSING}: no file at this path"
    if info.type != pafs.FileType.File:
        return None, 0, f"{UNREADABLE}: not a file ({info.type.name.lower()})"
    if info.size > max_bytes:
        return None, int(info.size), None
    data, error = read_file(root, root.uri, int(info.size), max_bytes=max_bytes)
    return data, int(info.size), error


def files_frame(frame: pd.DataFrame, path_col: str, max_bytes: int) -> pd.DataFrame:
    """The kernel's frame (``path, length, content, listing_error``) for a frame of the
    caller's rows: bytes from its ``content`` column where present, else read from each path
    (any URI pyarrow.fs opens)."""
    n = len(frame)
    contents: list[bytes | None] = [None] * n
    lengths = [0] * n
    errors: list[str | None] = [None] * n
    paths = frame[path_col].tolist()
    has_content = "content" in frame.columns
    for i, uri in enumerate(paths):
        if has_content:
            data = frame["content"].iat[i]
            if data is None:
                errors[i] = f"{UNREADABLE}: the content column is null for this row"
                continue
            lengths[i] = len(data)
            contents[i] = bytes(data) if lengths[i] <= max_bytes else None
        elif uri is None or not str(uri):
            errors[i] = f"{UNREADABLE}: no path (the {path_col} column is null or empty)"
        else:
            contents[i], lengths[i], errors[i] = read_path(str(uri), max_bytes)
    return pd.DataFrame(
        {
            "path": ["" if p is None else str(p) for p in paths],
            "length": lengths,
            "content": contents,
            "listing_error": errors,
        }
    )
