"""Listing the input: every image file under a path, and the rows Spark's scan skips.

Listing runs on the driver only (Spark's file index, no task), so it overlaps with the
workers' warm-up. Featurize and classify list their input the same way
(:func:`input_images`) and give zero-byte files their error rows the same way
(:func:`add_skipped_rows`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool3.config import Config
from pool3.errors import InputError
from pool3.featurize.kernel import MB
from pool3.storage.outputs import check_input

log = logging.getLogger(__name__)


def extension_glob(extensions: tuple[str, ...] | list[str]) -> str:
    """Case-insensitive Hadoop glob for file extensions: ``*.{[jJ][pP][gG],...}``."""
    alts = [
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext.lstrip("."))
        for ext in extensions
    ]
    return "*.{" + ",".join(alts) + "}"


def list_images(
    spark: SparkSession, path: str, *, extensions: tuple[str, ...], max_file_mb: int
) -> tuple[DataFrame, int]:
    """Image files under ``path`` (recursive): (frame of ``path, length, content``, count).

    Listing runs on the driver only (Spark's file index; no task), so that it overlaps with
    the workers' warm-up. Files above ``max_file_mb`` keep their row with ``content`` null
    (the length filter is pushed into the binaryFile reader, so their bytes are never read).
    Zero-byte files are counted but Spark's scan skips them: they get their rows after the
    main write, from :func:`skipped_files` (see :func:`add_skipped_rows`).
    """
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", extension_glob(extensions))
        .load(path)
    )
    listed = len(files.inputFiles())
    limit = max_file_mb * MB
    small = files.filter(F.col("length") <= limit).select("path", "length", "content")
    big = files.filter(F.col("length") > limit).select(
        "path", "length", F.lit(None).cast("binary").alias("content")
    )
    return small.unionByName(big), listed


def skipped_files(spark: SparkSession, files: DataFrame, rows: DataFrame) -> list[str]:
    """Listed files of ``files`` that have no row in ``rows`` (a frame with ``path``).

    Spark drops zero-length files when it plans a file scan, so they never reach a reader;
    the file index still lists them (``inputFiles``). The difference is found on the driver
    (a collect of the paths), so call it only when the row count is short.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    index = {str(jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(u))) for u in files.inputFiles()}
    seen = {row.path for row in rows.select("path").collect()}
    return sorted(index - seen)


def empty_files_frame(spark: SparkSession, paths: list[str]) -> DataFrame:
    """A files frame (``path, length, content``) of zero-byte files, to get their error rows."""
    return spark.createDataFrame(
        [(p, 0, b"") for p in paths], "path string, length long, content binary"
    )


def input_images(spark: SparkSession, config: Config, input_path: str) -> tuple[DataFrame, int]:
    """Check the input and list its images; InputError if missing, unreadable or empty."""
    check_input(spark, input_path)
    files, total = list_images(
        spark,
        input_path,
        extensions=config.featurize.extensions,
        max_file_mb=config.featurize.max_file_mb,
    )
    if total == 0:
        raise InputError(
            f"no images found under {input_path}: expected files with extensions "
            f"{', '.join(config.featurize.extensions)} (case-insensitive); check --input or "
            "featurize.extensions"
        )
    return files, total


def add_skipped_rows(
    spark: SparkSession,
    files: DataFrame,
    staging: str,
    expected: int,
    make_rows: Callable[[DataFrame], DataFrame],
) -> int:
    """Append the rows of listed files that the scan skipped (zero-byte files) to ``staging``.

    Spark's file scan drops zero-length files without a trace, so they are found after the
    main write, when ``staging`` holds fewer than ``expected`` rows (one more count; the path
    collect only then), and get their error rows from ``make_rows`` (the same featurize or
    classify step, on empty content). Returns how many rows were added.
    """
    staged = spark.read.parquet(staging)
    if staged.count() >= expected:
        return 0
    missing = skipped_files(spark, files, staged)
    if missing:
        log.warning("%d zero-byte files found; they get error rows", len(missing))
        make_rows(empty_files_frame(spark, missing)).write.mode("append").parquet(staging)
    return len(missing)
