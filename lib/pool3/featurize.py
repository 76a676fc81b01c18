"""The Spark featurize step: image files -> one feature row per file (``FEATURES_SCHEMA``).

The model is resolved once on the driver, its bytes broadcast, and built once per Python
worker (:func:`pool3.model.cached_featurizer`, whose cache lives in an importable module, so
reused workers keep it across tasks). Decode, RGB conversion and resize run in the worker;
inference is batched inside ``mapInPandas``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool3.config import Config
from pool3.model import ModelBundle
from pool3.schemas import FEATURE_COLUMNS, FEATURES_SCHEMA
from pool3.shipping import ShippedModel, ship_model
from pool3.worker import MB, BatchStats, WorkerOptions, auto_batch_size, featurize_batches

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
    main write, from :func:`skipped_files` (see :func:`pool3.featurize_run.add_skipped_rows`).
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


class _DictSum(AccumulatorParam):
    """Accumulates ``{partition: [images, seconds]}``."""

    def zero(self, value: dict[int, list[float]]) -> dict[int, list[float]]:
        return {}

    def addInPlace(
        self, a: dict[int, list[float]], b: dict[int, list[float]]
    ) -> dict[int, list[float]]:
        for key, (n, s) in b.items():
            old = a.setdefault(key, [0.0, 0.0])
            old[0] += n
            old[1] += s
        return a


@dataclass
class Telemetry:
    """Driver-side accumulators of the featurize step."""

    images: Any
    errors: Any
    decode_s: Any
    infer_s: Any
    partitions: Any

    @classmethod
    def create(cls, spark: SparkSession) -> Telemetry:
        sc = spark.sparkContext
        return cls(
            sc.accumulator(0),
            sc.accumulator(0),
            sc.accumulator(0.0),
            sc.accumulator(0.0),
            sc.accumulator({}, _DictSum()),
        )

    def summary(self) -> dict[str, Any]:
        parts = sorted(self.partitions.value.values(), key=lambda p: p[1])
        seconds = [p[1] for p in parts]
        median = seconds[len(seconds) // 2] if seconds else 0.0
        return {
            "decode_seconds": round(self.decode_s.value, 3),
            "inference_seconds": round(self.infer_s.value, 3),
            "partitions": len(parts),
            "partition_seconds_max": round(max(seconds, default=0.0), 3),
            "partition_seconds_median": round(median, 3),
            "partition_skew": round(max(seconds, default=0.0) / median, 2) if median else None,
        }


def featurize_files(
    spark: SparkSession,
    files: DataFrame,
    model: ModelBundle | ShippedModel,
    config: Config,
    *,
    manifest: dict[str, str] | None = None,
    telemetry: Telemetry | None = None,
) -> DataFrame:
    """Feature rows (``FEATURES_SCHEMA``) for a frame of files (``path, length, content``).

    ``model`` is a bundle (broadcast here) or one already shipped with
    :func:`pool3.shipping.ship_model`, e.g. to share workers warmed by
    :class:`pool3.shipping.WarmUp`.
    """
    from pool3.labels import parse_label_mode

    label_mode, _ = parse_label_mode(config.featurize.labels)
    shipped = model if isinstance(model, ShippedModel) else ship_model(spark, model, config)
    crash = spark.conf.get("spark.pool3.test.crashPartition", None)
    opts = WorkerOptions(
        fingerprint=shipped.fingerprint,
        batch_size=config.model.batch_size,
        worker_memory_mb=config.featurize.worker_memory_mb,
        max_pixels=config.featurize.max_pixels,
        max_file_bytes=config.featurize.max_file_mb * MB,
        apply_exif_orientation=config.featurize.apply_exif_orientation,
        label_mode=label_mode,
        manifest=manifest,
        crash_partition=int(crash) if crash not in (None, "") else None,
    )
    tel = telemetry

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else -1

        def record(stats: BatchStats) -> None:
            if tel is not None:
                tel.images.add(stats.images)
                tel.errors.add(stats.errors)
                tel.decode_s.add(stats.decode_s)
                tel.infer_s.add(stats.infer_s)
                tel.partitions.add({part: [stats.images, stats.decode_s + stats.infer_s]})

        yield from featurize_batches(frames, shipped.featurizer, opts, record)

    if config.featurize.partitions:
        files = files.repartition(config.featurize.partitions)
    log.info(
        "featurize: batch size %s, %d TF threads per worker, precision %s",
        opts.batch_size or f"auto ({auto_batch_size(opts.worker_memory_mb)} on CPU, 64 on GPU)",
        shipped.threads,
        shipped.precision,
    )
    return files.mapInPandas(run, FEATURES_SCHEMA).select(*FEATURE_COLUMNS)


class Progress:
    """Logs the running image count and rate every ``every`` images, from a driver thread."""

    def __init__(self, telemetry: Telemetry, *, every: int, total: int) -> None:
        self._tel, self._every, self._total = telemetry, every, total
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pool3-progress")
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        if self._every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _loop(self) -> None:
        reported = 0
        while not self._stop.wait(2.0):
            done = self._tel.images.value
            if done // self._every > reported // self._every:
                rate = done / max(time.monotonic() - self._start, 1e-9)
                log.info("featurized %d/%d images (%.1f images/s)", done, self._total, rate)
                reported = done
