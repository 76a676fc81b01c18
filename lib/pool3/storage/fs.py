"""File-system helpers for what pool3 itself writes and reads outside Spark (commit, lock,
manifests, model directory, report, thumbnails): ``pyarrow.fs`` (:mod:`pool3.storage.arrowfs`),
the same on Spark Classic, over Spark Connect and without a session.

The same calls work for local paths, ``file://``, ``hdfs://`` (libhdfs), ``s3a://``, ``gs://``
and ``abfs(s)://`` (:func:`pool3.storage.files.resolve`). A path without scheme is on the
session's ``fs.defaultFS`` (read from its conf, ``spark.hadoop.fs.defaultFS``), as Spark's own
readers and writers take it; with no default file system set, it is a local path. Spark's
writer keeps writing the Parquet itself.

These helpers let :data:`FS_ERRORS` (:class:`OSError`) through; :mod:`pool3.storage.outputs`
turns them into :class:`~pool3.errors.InputError` / :class:`~pool3.errors.OutputError` with the
path and a fix. :func:`read_json` is the exception: it is used on inputs and raises
``InputError`` itself.
"""

from __future__ import annotations

import getpass
import json
import os
import weakref
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

from pyspark.sql import SparkSession

from pool3.errors import InputError
from pool3.storage import arrowfs
from pool3.storage.files import is_uri

#: What the helpers raise when a file system says no.
FS_ERRORS = (OSError,)


def why(err: BaseException) -> str:
    """The message of one of :data:`FS_ERRORS`."""
    return str(err)


def default_fs(spark: SparkSession | None) -> str | None:
    """Hadoop's ``fs.defaultFS`` of this session (``hdfs://nn:8020`` on most clusters), or
    None where it is not set (then a path without scheme is local).

    Read once per session (every helper call would otherwise ask the session, a server round
    trip over Spark Connect) from its conf (``spark.hadoop.fs.defaultFS``), else from the
    ``core-site.xml`` of ``$HADOOP_CONF_DIR`` (or ``$HADOOP_HOME/etc/hadoop``), which is where
    a YARN cluster's Spark takes it from.
    """
    if spark is None:
        return core_site_default_fs(os.environ)
    if spark not in _DEFAULT_FS:
        value = spark.conf.get("spark.hadoop.fs.defaultFS", None)
        _DEFAULT_FS[spark] = value or core_site_default_fs(os.environ)
    return _DEFAULT_FS[spark]


#: :func:`default_fs` per session (a session's Hadoop configuration is fixed at its start)
_DEFAULT_FS: weakref.WeakKeyDictionary[SparkSession, str | None] = weakref.WeakKeyDictionary()


def core_site_default_fs(environ: Mapping[str, str]) -> str | None:
    """``fs.defaultFS`` of the Hadoop client configuration named by ``environ``, or None."""
    folders = [environ.get("HADOOP_CONF_DIR", "")]
    if environ.get("HADOOP_HOME"):
        folders.append(os.path.join(environ["HADOOP_HOME"], "etc", "hadoop"))
    for folder in filter(None, folders):
        site = os.path.join(folder, "core-site.xml")
        if not os.path.isfile(site):
            continue
        try:
            root = ElementTree.parse(site).getroot()  # noqa: S314 - the cluster's own config
        except (OSError, ElementTree.ParseError):
            return None
        for prop in root.iter("property"):
            if (prop.findtext("name") or "").strip() == "fs.defaultFS":
                return (prop.findtext("value") or "").strip() or None
        return None
    return None


def on_default_fs(spark: SparkSession | None, path: str) -> str:
    """``path`` as Spark reads it: without scheme it is on ``fs.defaultFS`` when that is not the
    local disk (a relative path is then under ``/user/<name>``, Hadoop's home)."""
    if is_uri(path):
        return path
    default = default_fs(spark)
    if not default or default.lower().startswith("file:"):
        return path
    if not path.startswith("/"):  # Hadoop's working directory: the user's home
        path = f"/user/{getpass.getuser()}/{path}"
    return default.rstrip("/") + path


def qualify(spark: SparkSession | None, path: str) -> str:
    """Absolute form of ``path``: ``hdfs://nn/x`` for HDFS, ``/abs/x`` for local paths.

    A local path given without scheme stays scheme-less (relative ones become absolute),
    so logs and manifests show what the user typed; other paths get scheme and authority.
    """
    return arrowfs.qualify(on_default_fs(spark, path))


def literal(path: str) -> str:
    """``path`` with Hadoop glob characters escaped, for Spark readers (which glob every
    path they are given): an output under ``/data/fm [2019]`` is read as named."""
    return "".join("\\" + c if c in "{}[]*?\\" else c for c in path)


def join(path: str, name: str) -> str:
    """``path/name`` without doubling the slash."""
    return f"{path.rstrip('/')}/{name}"


def parent_and_name(spark: SparkSession | None, path: str) -> tuple[str, str]:
    """Parent directory and last component of a qualified ``path``; ValueError at the root."""
    parent, _, name = path.rstrip("/").rpartition("/")
    if not name or not parent.strip("/").rpartition(":")[2]:
        raise ValueError(f"{path!r} has no parent directory")
    return parent, name


def exists(spark: SparkSession | None, path: str) -> bool:
    """Whether a file or directory exists at ``path``."""
    return arrowfs.exists(on_default_fs(spark, path))


def is_dir(spark: SparkSession | None, path: str) -> bool:
    """Whether ``path`` is an existing directory."""
    return arrowfs.is_dir(on_default_fs(spark, path))


def mkdirs(spark: SparkSession | None, path: str) -> None:
    """Create ``path`` and missing parents; OSError if the file system says no."""
    arrowfs.mkdirs(on_default_fs(spark, path))


def delete(spark: SparkSession | None, path: str, *, recursive: bool = True) -> bool:
    """Delete ``path`` (recursively by default); False if it did not exist."""
    return arrowfs.delete(on_default_fs(spark, path), recursive=recursive)


def rename(spark: SparkSession | None, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (which must not exist); OSError if refused.

    Atomic on HDFS and local file systems; on object stores (s3a) a copy then a delete.
    """
    arrowfs.rename(on_default_fs(spark, src), on_default_fs(spark, dst))


def list_names(spark: SparkSession | None, path: str) -> list[str]:
    """Names of the entries directly under directory ``path``, sorted."""
    return arrowfs.list_names(on_default_fs(spark, path))


def list_files(spark: SparkSession | None, path: str, *, recursive: bool = False) -> list[str]:
    """Full paths of the files (not directories) under ``path``, sorted."""
    return arrowfs.list_files(on_default_fs(spark, path), recursive=recursive)


def file_sizes(spark: SparkSession | None, path: str) -> dict[str, int]:
    """Size in bytes of every file under directory ``path`` (recursively), by relative path."""
    return arrowfs.file_sizes(on_default_fs(spark, path))


def write_bytes(spark: SparkSession | None, path: str, data: bytes) -> None:
    """Write ``data`` to ``path``, replacing an existing file."""
    arrowfs.write_bytes(on_default_fs(spark, path), data)


def write_text(spark: SparkSession | None, path: str, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path``, replacing an existing file."""
    write_bytes(spark, path, text.encode("utf-8"))


def write_files(spark: SparkSession | None, directory: str, files: Mapping[str, bytes]) -> None:
    """Write ``{name: bytes}`` into ``directory`` (created if absent), replacing files."""
    mkdirs(spark, directory)
    for name, data in files.items():
        write_bytes(spark, join(directory, name), data)


def read_bytes(spark: SparkSession | None, path: str) -> bytes:
    """The bytes of the file at ``path``."""
    return arrowfs.read_bytes(on_default_fs(spark, path))


def read_text(spark: SparkSession | None, path: str) -> str:
    """The UTF-8 text of the file at ``path``."""
    return read_bytes(spark, path).decode("utf-8")


def modified_ms(spark: SparkSession | None, path: str) -> int:
    """Modification time of ``path`` in ms since the epoch, by the file system's clock."""
    return arrowfs.modified_ms(on_default_fs(spark, path))


def create_new(spark: SparkSession | None, path: str, data: bytes) -> bool:
    """Create ``path`` holding ``data`` only if nothing is there; False if something is.

    Atomic on local disks (the file is written aside, then hard-linked into place:
    ``link(2)`` fails if the name exists, and a reader never sees it half-written); on the
    other stores pyarrow has no conditional create, so it is a check, then a write: two runs
    starting within the same instant may both succeed there (see docs/cluster.md, "Who owns
    an output").
    """
    return arrowfs.create_new(on_default_fs(spark, path), data)


def rename_new(spark: SparkSession | None, src: str, dst: str) -> bool:
    """Rename file ``src`` to ``dst`` unless ``dst`` exists (then False, ``src`` kept).

    Unlike :func:`rename` this never replaces ``dst``, also on local disks (where
    ``rename(2)`` would): the file is linked to the new name, then unlinked.
    """
    return arrowfs.rename_new(on_default_fs(spark, src), on_default_fs(spark, dst))


def read_json(spark: SparkSession | None, path: str) -> dict[str, Any]:
    """The JSON object stored at ``path`` (e.g. a run manifest).

    Raises
    ------
    InputError
        Missing or unreadable file, invalid JSON, or JSON that is not an object.
    """
    try:
        text = read_text(spark, path)
    except FS_ERRORS as err:
        raise InputError(f"cannot read JSON file {path!r}: {why(err)}") from err
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path!r} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise InputError(f"{path!r} holds a JSON {type(value).__name__}; expected an object")
    return value
