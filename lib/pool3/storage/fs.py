"""File-system helpers for outputs: Hadoop's FileSystem through the Spark JVM (py4j), or
``pyarrow.fs`` (:mod:`pool3.storage.arrowfs`) where the session has no JVM (Spark Connect,
or ``spark=None``).

The same calls work for local paths, ``file://``, ``hdfs://`` and ``s3a://``: each path is
resolved with ``org.apache.hadoop.fs.Path(uri).getFileSystem(hadoopConfiguration)``, the
same way Spark's readers and writers resolve it (scheme-less paths use ``fs.defaultFS``).

These helpers let :data:`FS_ERRORS` (Java errors, :class:`OSError`) through;
:mod:`pool3.storage.outputs` turns them into :class:`~pool3.errors.InputError` /
:class:`~pool3.errors.OutputError` with the path and a fix. :func:`read_json` is the
exception: it is used on inputs and raises ``InputError`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.sql import SparkSession

from pool3.errors import ConfigError, InputError
from pool3.storage import arrowfs


def hadoop_path(spark: SparkSession | None, path: str) -> tuple[Any, Any]:
    """``(FileSystem, Path)`` JVM objects for ``path``."""
    jvm = getattr(spark, "_jvm", None)
    jsc = getattr(spark, "_jsc", None)
    if jvm is None or jsc is None:
        raise ConfigError(
            "pool3's file helpers need a classic SparkSession with a JVM, not Spark Connect; "
            "build it with pool3.session.build_session"
        )
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(jsc.hadoopConfiguration()), jpath


def java_message(err: Py4JJavaError) -> str:
    """The Java exception's class and message, without the stack trace."""
    return str(err.java_exception.toString())


#: What the helpers raise when a file system says no: Java errors through py4j, OSError
#: from pyarrow.fs or the local disk.
FS_ERRORS = (Py4JError, OSError)


def why(err: BaseException) -> str:
    """The message of one of :data:`FS_ERRORS`, without a Java stack trace."""
    return java_message(err) if isinstance(err, Py4JJavaError) else str(err)


def no_jvm(spark: SparkSession | None) -> bool:
    """Whether ``spark`` has no JVM at hand (None, or Spark Connect): use pyarrow.fs."""
    return getattr(spark, "_jvm", None) is None or getattr(spark, "_jsc", None) is None


def qualify(spark: SparkSession | None, path: str) -> str:
    """Absolute form of ``path``: ``hdfs://nn/x`` for HDFS, ``/abs/x`` for local paths.

    A local path given without scheme stays scheme-less (relative ones become absolute),
    so logs and manifests show what the user typed; other paths get scheme and authority.
    """
    if no_jvm(spark):
        return arrowfs.qualify(path)
    fs, jpath = hadoop_path(spark, path)
    qualified = fs.makeQualified(jpath)
    if (
        "://" not in path
        and not path.startswith("file:")
        and qualified.toUri().getScheme() == "file"
    ):
        return str(qualified.toUri().getPath())
    return str(qualified.toString())


def default_fs(spark: SparkSession) -> str | None:
    """Hadoop's ``fs.defaultFS`` of this session (``hdfs://nn:8020`` on most clusters), or
    None where it is not set; read from the JVM, or from the Spark conf over Connect."""
    jsc = getattr(spark, "_jsc", None)
    if jsc is not None:
        value = jsc.hadoopConfiguration().get("fs.defaultFS")
        return str(value) if value else None
    return spark.conf.get("spark.hadoop.fs.defaultFS", None) or None


def literal(path: str) -> str:
    """``path`` with Hadoop glob characters escaped, for Spark readers (which glob every
    path they are given): an output under ``/data/fm [2019]`` is read as named."""
    return "".join("\\" + c if c in "{}[]*?\\" else c for c in path)


def join(path: str, name: str) -> str:
    """``path/name`` without doubling the slash."""
    return f"{path.rstrip('/')}/{name}"


def parent_and_name(spark: SparkSession | None, path: str) -> tuple[str, str]:
    """Parent directory and last component of a qualified ``path``; ValueError at the root."""
    if no_jvm(spark):
        parent, _, name = path.rstrip("/").rpartition("/")
        if not name or not parent.strip("/").rpartition(":")[2]:
            raise ValueError(f"{path!r} has no parent directory")
        return parent, name
    _, jpath = hadoop_path(spark, path)
    parent = jpath.getParent()
    if parent is None or not jpath.getName():
        raise ValueError(f"{path!r} has no parent directory")
    return str(parent.toString()), str(jpath.getName())


def exists(spark: SparkSession | None, path: str) -> bool:
    """Whether a file or directory exists at ``path``."""
    if no_jvm(spark):
        return arrowfs.exists(path)
    fs, jpath = hadoop_path(spark, path)
    return bool(fs.exists(jpath))


def is_dir(spark: SparkSession | None, path: str) -> bool:
    """Whether ``path`` is an existing directory."""
    if no_jvm(spark):
        return arrowfs.is_dir(path)
    fs, jpath = hadoop_path(spark, path)
    return bool(fs.exists(jpath) and fs.getFileStatus(jpath).isDirectory())


def mkdirs(spark: SparkSession | None, path: str) -> None:
    """Create ``path`` and missing parents; OSError if the file system says no."""
    if no_jvm(spark):
        arrowfs.mkdirs(path)
        return
    fs, jpath = hadoop_path(spark, path)
    if not fs.mkdirs(jpath):
        raise OSError(f"cannot create directory {path}")


def delete(spark: SparkSession | None, path: str, *, recursive: bool = True) -> bool:
    """Delete ``path`` (recursively by default); False if it did not exist."""
    if no_jvm(spark):
        return arrowfs.delete(path, recursive=recursive)
    fs, jpath = hadoop_path(spark, path)
    return bool(fs.delete(jpath, recursive))


def rename(spark: SparkSession | None, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (which must not exist); OSError if refused.

    Atomic on HDFS and local file systems; on object stores (s3a) a copy then a delete.
    """
    if no_jvm(spark):
        arrowfs.rename(src, dst)
        return
    fs, jsrc = hadoop_path(spark, src)
    _, jdst = hadoop_path(spark, dst)
    if not fs.rename(jsrc, jdst):
        raise OSError(f"cannot rename {src} to {dst}")


def list_names(spark: SparkSession | None, path: str) -> list[str]:
    """Names of the entries directly under directory ``path``, sorted."""
    if no_jvm(spark):
        return arrowfs.list_names(path)
    fs, jpath = hadoop_path(spark, path)
    return sorted(str(status.getPath().getName()) for status in fs.listStatus(jpath))


def list_files(spark: SparkSession | None, path: str, *, recursive: bool = False) -> list[str]:
    """Full paths of the files (not directories) under ``path``, sorted."""
    if no_jvm(spark):
        return arrowfs.list_files(path, recursive=recursive)
    fs, jpath = hadoop_path(spark, path)
    files = []
    iterator = fs.listFiles(jpath, recursive)
    while iterator.hasNext():
        files.append(str(iterator.next().getPath().toString()))
    return sorted(files)


def write_bytes(spark: SparkSession | None, path: str, data: bytes) -> None:
    """Write ``data`` to ``path``, replacing an existing file."""
    if no_jvm(spark):
        arrowfs.write_bytes(path, data)
        return
    fs, jpath = hadoop_path(spark, path)
    stream = fs.create(jpath, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


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
    if no_jvm(spark):
        return arrowfs.read_bytes(path)
    fs, jpath = hadoop_path(spark, path)
    stream = fs.open(jpath)
    try:
        return bytes(stream.readAllBytes())
    finally:
        stream.close()


def read_text(spark: SparkSession | None, path: str) -> str:
    """The UTF-8 text of the file at ``path``."""
    return read_bytes(spark, path).decode("utf-8")


def modified_ms(spark: SparkSession | None, path: str) -> int:
    """Modification time of ``path`` in ms since the epoch, by the file system's clock."""
    if no_jvm(spark):
        return arrowfs.modified_ms(path)
    fs, jpath = hadoop_path(spark, path)
    return int(fs.getFileStatus(jpath).getModificationTime())


def _local(fs: Any, jpath: Any) -> str | None:
    """The OS path of ``jpath`` if it is on the local file system, else None."""
    return str(jpath.toUri().getPath()) if str(fs.getScheme()) == "file" else None


def create_new(spark: SparkSession | None, path: str, data: bytes) -> bool:
    """Create ``path`` holding ``data`` only if nothing is there; False if something is.

    Atomic where the store makes it so: local disks (the file is written aside, then
    hard-linked into place: ``link(2)`` fails if the name exists, and a reader never sees
    it half-written), HDFS (the NameNode refuses a second create), ABFS and GCS
    (conditional create). On S3 (s3a) it is a check then a write unless the store and
    Hadoop support conditional writes: two runs starting within the same instant may
    both succeed there (see docs/cluster.md, "Who owns an output").
    """
    if no_jvm(spark):
        return arrowfs.create_new(path, data)
    fs, jpath = hadoop_path(spark, path)
    local = _local(fs, jpath)
    if local is not None:
        return arrowfs.link_new(local, data)
    if fs.exists(jpath):
        return False
    try:
        stream = fs.create(jpath, False)
    except Py4JJavaError:
        if fs.exists(jpath):  # FileAlreadyExists, or another client is creating it
            return False
        raise
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()
    return True


def rename_new(spark: SparkSession | None, src: str, dst: str) -> bool:
    """Rename file ``src`` to ``dst`` unless ``dst`` exists (then False, ``src`` kept).

    Unlike :func:`rename` this never replaces ``dst``, also on local disks (where
    ``rename(2)`` would): the file is linked to the new name, then unlinked.
    """
    if no_jvm(spark):
        return arrowfs.rename_new(src, dst)
    fs, jsrc = hadoop_path(spark, src)
    _, jdst = hadoop_path(spark, dst)
    local = _local(fs, jsrc)
    if local is not None:
        return arrowfs.link_new(str(jdst.toUri().getPath()), src=local)
    if fs.exists(jdst):
        return False
    return bool(fs.rename(jsrc, jdst))


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
