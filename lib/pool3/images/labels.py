"""Labels for image paths: from the file name (the tutorial's rule), the folder, or a manifest.

Paths arrive as Spark's binaryFile ``path`` column, e.g. ``file:/data/baby_shoe_0.jpg``.
Spark 4 gives those URIs *unencoded* (``file:/data/a b_1.jpg``, ``file:/data/café_1.jpg``),
so by default a ``%`` in a path is taken literally. Callers holding percent-encoded URIs
(``input_file_name()``, ``_metadata.file_path``, URLs) pass ``url_encoded=True``; the path is
then decoded with :func:`urllib.parse.unquote` before the name is taken.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pyarrow.fs as pafs

from pool3.errors import ConfigError, InputError

LABEL_MODES = ("filename", "folder", "manifest", "none")

# The tutorial: re.split('_\d+', name)[0]. We anchor at the end, so the label is everything
# before the *last* "_<digits>" of the stem: car_GPS_12.JPG -> car_GPS, a_1_b_2.jpg -> a_1_b.
_NUMBERED_STEM = re.compile(r"(.+)_\d+", re.DOTALL)  # a newline in a name is a character
_FILE_SCHEME = re.compile(r"^file:(//(?=/))?")


def normalize_path(path: str, *, url_encoded: bool = False) -> str:
    """Drop a ``file:`` scheme (``file:/x``, ``file:///x`` -> ``/x``), optionally unquote.

    Other schemes (``hdfs://``, ``s3a://``) are kept. Nothing is shell-expanded.
    """
    if url_encoded:
        path = unquote(path)
    return _FILE_SCHEME.sub("", path)


def label_from_filename(path: str, *, url_encoded: bool = False) -> str | None:
    """The tutorial's label: the file name without extension, before its last ``_<digits>``.

    Parameters
    ----------
    path : str
        Local path or URI (``file:/data/baby_shoe_0.jpg``).
    url_encoded : bool
        Percent-decode the path first (see the module docstring).

    Returns
    -------
    str or None
        ``baby_shoe_0.jpg`` -> ``"baby_shoe"``, ``car_GPS_12.JPG`` -> ``"car_GPS"``;
        None if the stem does not end in ``_<digits>`` or nothing precedes it.
    """
    name = normalize_path(path, url_encoded=url_encoded).rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    match = _NUMBERED_STEM.fullmatch(stem)
    return match.group(1) if match else None


def label_from_folder(path: str, *, url_encoded: bool = False) -> str | None:
    """The name of the folder holding the file (``/data/boot/x.jpg`` -> ``"boot"``), or None."""
    parts = normalize_path(path, url_encoded=url_encoded).rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] in ("", ".", ".."):
        return None
    return parts[-2]


def parse_label_mode(spec: str) -> tuple[str, str | None]:
    """Parse ``filename``, ``folder``, ``none`` or ``manifest:FILE``.

    Returns
    -------
    (mode, manifest_file)
        ``manifest_file`` is None except for ``manifest:FILE``.
    """
    accepted = "filename, folder, none or manifest:FILE (a CSV or Parquet with path,label)"
    if spec in ("filename", "folder", "none"):
        return spec, None
    if spec.startswith("manifest:") and spec[len("manifest:") :].strip():
        return "manifest", spec[len("manifest:") :]
    raise ConfigError(f"unknown label mode {spec!r}; expected {accepted}")


def read_manifest(
    path: str | Path, *, filesystem: pafs.FileSystem | None = None, shown: str | None = None
) -> dict[str, str]:
    """Read a ``path,label`` table (CSV, or Parquet file/folder) into ``{path: label}``.

    ``path`` is local, or a path on ``filesystem`` (a ``pyarrow.fs`` file system: the
    featurize command resolves ``manifest:hdfs://...`` and ``s3a://`` URIs to one);
    ``shown`` is the name used in messages (by default ``path``). Paths are normalised with
    :func:`normalize_path` and otherwise taken as data. A CSV is read with every cell as
    text, so labels such as ``NA`` or ``007`` stay as written.

    Raises
    ------
    InputError
        Missing or unreadable file, missing columns, empty labels, or one path with two labels.
    """
    shown = shown or str(path)
    fs = filesystem or pafs.LocalFileSystem()
    where = str(path) if filesystem is not None else os.path.abspath(path)
    try:
        kind = fs.get_file_info(where).type
        if kind == pafs.FileType.NotFound:
            raise InputError(f"label manifest {shown!r} does not exist; check manifest:FILE")
        if kind == pafs.FileType.Directory:
            frame = pd.read_parquet(where, filesystem=fs)
        else:
            with fs.open_input_file(where) as handle:
                parquet = handle.read(4) == b"PAR1"
                handle.seek(0)
                if parquet:
                    frame = pd.read_parquet(handle)
                else:
                    frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read label manifest {shown!r}: {err}") from err
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise InputError(
            f"label manifest {shown!r} lacks column(s) {missing}; found "
            f"{list(frame.columns)}; expected a header row with path,label"
        )
    paths = (
        frame["path"]
        .astype("string")
        .map(normalize_path, na_action="ignore")
        .str.removeprefix("./")
    )
    labels = frame["label"].astype("string")
    bad = frame.index[paths.isna() | (paths == "") | labels.isna() | (labels == "")]
    if len(bad):
        raise InputError(
            f"label manifest {shown!r} has {len(bad)} row(s) with an empty path or label "
            f"(first data rows: {[int(i) + 1 for i in bad[:5]]}); fill or remove them"
        )
    table = pd.DataFrame({"path": paths, "label": labels}).drop_duplicates()
    clashes = table["path"][table["path"].duplicated()]
    if len(clashes):
        raise InputError(
            f"label manifest {shown!r} gives different labels to the same path, e.g. "
            f"{clashes.iloc[0]!r}; keep one label per path"
        )
    return dict(zip(table["path"], table["label"], strict=True))


def labels_for_paths(
    paths: pd.Series,
    mode: str,
    manifest: dict[str, str] | None = None,
    *,
    url_encoded: bool = False,
) -> pd.Series:
    """Label every path with one of :data:`LABEL_MODES`.

    For ``manifest``, an entry matches an image if it equals its normalised path or, for a
    relative entry such as ``boots/b_1.jpg``, a ``/``-aligned tail of it; the longest match wins.

    Returns
    -------
    pandas.Series of object dtype, same index as ``paths``
        The label, or None where it is unknown.
    """
    if mode == "filename":
        values = [label_from_filename(p, url_encoded=url_encoded) for p in paths]
    elif mode == "folder":
        values = [label_from_folder(p, url_encoded=url_encoded) for p in paths]
    elif mode == "none":
        values = [None] * len(paths)
    elif mode == "manifest":
        if manifest is None:
            raise ConfigError("label mode 'manifest' needs the manifest from read_manifest()")
        values = [_manifest_label(p, manifest, url_encoded) for p in paths]
    else:
        raise ConfigError(f"unknown label mode {mode!r}; expected one of {LABEL_MODES}")
    return pd.Series(values, index=paths.index, dtype=object, name="label")


def _manifest_label(path: str, manifest: dict[str, str], url_encoded: bool) -> str | None:
    full = normalize_path(path, url_encoded=url_encoded)
    if full in manifest:
        return manifest[full]
    parts = full.split("/")
    for start in range(1, len(parts)):
        label = manifest.get("/".join(parts[start:]))
        if label is not None:
            return label
    return None
