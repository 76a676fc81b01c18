"""Incremental featurize: reuse the rows of a committed output for content already seen."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool3.extraction.kernel import WorkerOptions, read_bytes
from pool3.images.labels import labels_for_paths
from pool3.storage.commit import MANIFEST_NAME
from pool3.storage.files import Root
from pool3.storage.fs import exists, join, literal, read_json
from pool3.storage.integrity import check_parts
from pool3.storage.schemas import FEATURE_COLUMNS


def reuse_previous(
    spark: SparkSession,
    files: DataFrame,
    previous: str,
    fingerprint: str,
    label_mode: str,
    manifest: dict[str, str] | None,
    *,
    runtime: str,
    precision: str,
    root: Root,
    max_file_bytes: int,
    tasks: int,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Split ``files`` into (to featurize, reused rows, hashed) against a committed output.

    Rows are reused by content (``sha256``), model fingerprint and ``precision``: a changed
    model or precision reuses nothing (rows of older versions, without a ``precision``
    column, count as another precision); a float32 row of the other runtime is reused (both
    runtimes' float32 features agree within 1e-4) and keeps its own ``runtime``, a bfloat16
    row only from the same runtime; error rows are retried; paths no
    longer present are dropped, so the result equals a full run over the current collection.
    Each file under ``root`` is read once in a worker to hash it (``hashed``, persisted for
    the two halves: unpersist it when both are written); a file that cannot be read has no
    hash and is featurized, which gives it its error row. The files to featurize are spread
    over ``tasks`` tasks again (the join's shuffle would leave them in a few). A previous
    output whose parts changed after its commit is refused (InputError) before it is read.
    """
    if exists(spark, committed := join(previous, MANIFEST_NAME)):
        check_parts(
            spark,
            previous,
            read_json(spark, committed),
            fix="run featurize with --mode overwrite (all rows made again) or into a new output",
        )
    old = spark.read.parquet(literal(previous))
    for column in ("runtime", "precision"):
        if column not in old.columns:
            old = old.withColumn(column, F.lit(None).cast("string"))
    same_runtime = F.lit(True) if precision == "float32" else F.col("runtime") == runtime
    old = (
        old.filter(
            (F.col("model") == fingerprint)
            & (F.col("precision") == precision)
            & same_runtime
            & F.col("error").isNull()
        )
        .select("sha256", "width", "height", "features", "runtime")
        .dropDuplicates(["sha256"])
    )
    opts = WorkerOptions(fingerprint=fingerprint, root=root, max_file_bytes=max_file_bytes)

    def hashed(frames: Any) -> Any:
        for frame in frames:
            yield hash_frame(frame, opts)

    schema = "path string, length long, listing_error string, sha256 string"
    keyed = files.mapInPandas(hashed, schema).persist()
    todo = (
        keyed.join(old.select("sha256"), "sha256", "left_anti")
        .select("path", "length", "listing_error")
        .repartition(tasks)
    )

    def label(frames: Any) -> Any:
        for frame in frames:
            frame["label"] = labels_for_paths(frame["path"], label_mode, manifest)
            yield frame

    reused = (
        keyed.select("path", "sha256")
        .join(old, "sha256", "inner")
        .mapInPandas(
            label,
            "path string, sha256 string, width int, height int, "
            "features array<float>, runtime string, label string",
        )
        .withColumn("model", F.lit(fingerprint))
        .withColumn("precision", F.lit(precision))
        .withColumn("error", F.lit(None).cast("string"))
        .select(*FEATURE_COLUMNS)
    )
    return todo, reused, keyed


def hash_frame(frame: pd.DataFrame, opts: WorkerOptions) -> pd.DataFrame:
    """A files frame with ``sha256`` added (None where the file cannot be read)."""
    shas = []
    for i in range(len(frame)):
        data, _ = read_bytes(frame, i, opts)
        shas.append(None if data is None else hashlib.sha256(data).hexdigest())
    return frame.assign(sha256=shas)
