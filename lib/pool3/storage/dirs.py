"""Small files in a directory given by path or URI: the model directory and its report.

Through Spark's Hadoop FileSystem when a session with a JVM is given (as every pool3
command does: ``hdfs://``, ``s3a://``, ``abfss://`` resolve as for Spark's own writers),
else through ``pyarrow.fs`` (:func:`pool3.storage.files.resolve`): a notebook without
Spark, or Spark Connect. Errors are :class:`OSError` or py4j's; callers name the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pyspark.sql import SparkSession

from pool3.storage import fs
from pool3.storage.files import resolve

PathLike = str | os.PathLike[str]


def _jvm(spark: SparkSession | None) -> SparkSession | None:
    return spark if spark is not None and getattr(spark, "_jvm", None) is not None else None


def read_bytes(directory: PathLike, name: str, *, spark: SparkSession | None = None) -> bytes:
    """The bytes of ``directory/name``."""
    where = os.fspath(directory)
    session = _jvm(spark)
    if session is not None:
        return fs.read_bytes(session, fs.join(where, name))
    root = resolve(where)
    with root.filesystem().open_input_stream(f"{root.fs_path.rstrip('/')}/{name}") as stream:
        return bytes(stream.readall())


def write_files(
    directory: PathLike, files: Mapping[str, bytes], *, spark: SparkSession | None = None
) -> None:
    """Write ``{name: bytes}`` into ``directory`` (created if absent), replacing files."""
    where = os.fspath(directory)
    session = _jvm(spark)
    if session is not None:
        fs.mkdirs(session, where)
        for name, data in files.items():
            fs.write_bytes(session, fs.join(where, name), data)
        return
    root = resolve(where)
    root.filesystem().create_dir(root.fs_path, recursive=True)
    for name, data in files.items():
        with root.filesystem().open_output_stream(f"{root.fs_path.rstrip('/')}/{name}") as out:
            out.write(data)
