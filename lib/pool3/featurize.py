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
from pool3.model import ModelBundle, cached_featurizer
from pool3.schemas import FEATURE_COLUMNS, FEATURES_SCHEMA
from pool3.worker import MB, BatchStats, WorkerOptions, auto_batch_size, featurize_batches

log = logging.getLogger(__name__)


def extension_glob(extensions: tuple[str, ...] | list[str]) -> str:
    """Case-insensitive Hadoop glob for file extensions: ``*.{[jJ][pP][gG],...}``."""
    alts = [
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext.lstrip("."))
        for ext in extensions
    ]
    return "*.{" + ",".join(alts) + "}"


def _empty_files(spark: SparkSession, files: DataFrame, listed: int) -> list[str]:
    """Paths of zero-byte files, which Spark's file scan skips without a trace.

    Spark drops zero-length files when it plans the scan, so they never reach a reader. The
    file index still lists them (``inputFiles``); when its count differs from the scan's,
    the difference is found on the driver (only then: it costs a collect of the paths).
    """
    scanned = files.select("path").count()
    if scanned == listed:
        return []
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    index = {str(jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(u))) for u in files.inputFiles()}
    seen = {row.path for row in files.select("path").collect()}
    return sorted(index - seen)


def list_images(
    spark: SparkSession, path: str, *, extensions: tuple[str, ...], max_file_mb: int
) -> tuple[DataFrame, int]:
    """Image files under ``path`` (recursive): (frame of ``path, length, content``, count).

    Every listed file gets a row: files above ``max_file_mb`` keep theirs with ``content``
    null (the length filter is pushed into the binaryFile reader, so their bytes are never
    read), and zero-byte files, which Spark's scan skips, are added back with empty content.
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
    result = small.unionByName(big)
    empty = _empty_files(spark, files, listed)
    if empty:
        log.warning("%d zero-byte files found; they get error rows", len(empty))
        rows = [(p, 0, b"") for p in empty]
        result = result.unionByName(
            spark.createDataFrame(rows, "path string, length long, content binary")
        )
    return result, listed


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
    bundle: ModelBundle,
    config: Config,
    *,
    manifest: dict[str, str] | None = None,
    telemetry: Telemetry | None = None,
) -> DataFrame:
    """Feature rows (``FEATURES_SCHEMA``) for a frame of files (``path, length, content``)."""
    from pool3.labels import parse_label_mode

    label_mode, _ = parse_label_mode(config.featurize.labels)
    task_cpus = int(spark.conf.get("spark.task.cpus", "1") or 1)
    threads = config.model.threads or task_cpus
    crash = spark.conf.get("spark.pool3.test.crashPartition", None)
    opts = WorkerOptions(
        fingerprint=bundle.fingerprint,
        batch_size=config.model.batch_size,
        worker_memory_mb=config.featurize.worker_memory_mb,
        max_pixels=config.featurize.max_pixels,
        max_file_bytes=config.featurize.max_file_mb * MB,
        apply_exif_orientation=config.featurize.apply_exif_orientation,
        label_mode=label_mode,
        manifest=manifest,
        crash_partition=int(crash) if crash not in (None, "") else None,
    )
    broadcast = spark.sparkContext.broadcast(bundle)
    precision = config.model.precision
    tel = telemetry

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else -1

        def get() -> Any:
            return cached_featurizer(
                lambda: broadcast.value,
                fingerprint=opts.fingerprint,
                threads=threads,
                precision=precision,
            )

        def record(stats: BatchStats) -> None:
            if tel is not None:
                tel.images.add(stats.images)
                tel.errors.add(stats.errors)
                tel.decode_s.add(stats.decode_s)
                tel.infer_s.add(stats.infer_s)
                tel.partitions.add({part: [stats.images, stats.decode_s + stats.infer_s]})

        yield from featurize_batches(frames, get, opts, record)

    if config.featurize.partitions:
        files = files.repartition(config.featurize.partitions)
    log.info(
        "featurize: batch size %s, %d TF threads per worker, precision %s",
        opts.batch_size or f"auto ({auto_batch_size(opts.worker_memory_mb)} on CPU, 64 on GPU)",
        threads,
        precision,
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
