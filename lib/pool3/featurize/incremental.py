"""Incremental featurize: reuse the rows of a committed output for content already seen."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool3.images.labels import labels_for_paths
from pool3.storage.schemas import FEATURE_COLUMNS


def reuse_previous(
    spark: SparkSession,
    files: DataFrame,
    previous: str,
    fingerprint: str,
    label_mode: str,
    manifest: dict[str, str] | None,
) -> tuple[DataFrame, DataFrame]:
    """Split ``files`` into (to featurize, reused rows) against a committed output.

    Rows are reused by content (``sha256``) and model fingerprint: a changed model reuses
    nothing; error rows are retried; paths no longer present are dropped, so the result
    equals a full run over the current collection.
    """
    old = (
        spark.read.parquet(previous)
        .filter((F.col("model") == fingerprint) & F.col("error").isNull())
        .select("sha256", "width", "height", "features")
        .dropDuplicates(["sha256"])
    )
    keyed = files.withColumn("sha256", F.sha2(F.col("content"), 256))
    todo = keyed.join(old.select("sha256"), "sha256", "left_anti").select(
        "path", "length", "content"
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
            "features array<float>, label string",
        )
        .withColumn("model", F.lit(fingerprint))
        .withColumn("error", F.lit(None).cast("string"))
        .select(*FEATURE_COLUMNS)
    )
    return todo, reused
