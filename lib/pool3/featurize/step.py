"""The Spark featurize step: image files -> one feature row per file (``FEATURES_SCHEMA``).

The model is resolved once on the driver, its bytes broadcast, and built once per Python
worker (:func:`pool3.model.cached_featurizer`, whose cache lives in an importable module, so
reused workers keep it across tasks). Reading each file, decode, RGB conversion and resize
run in the worker; inference is batched inside ``mapInPandas``. A ``then`` function turns
each batch of feature rows into other rows in the same worker (scoring does so), so
features need not cross Arrow twice.

:class:`Telemetry` (accumulators) carries timings and the live progress count only: Spark
may apply a transformation's accumulator updates more than once (retried tasks), so every
count a run reports is read from the rows it wrote (:mod:`pool3.commands.lifecycle`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from pool3.config import Config
from pool3.featurize.kernel import MB, BatchStats, WorkerOptions, auto_batch_size, featurize_batches
from pool3.featurize.shipping import ShippedModel, ship_model
from pool3.images.labels import parse_label_mode
from pool3.model import ModelBundle
from pool3.storage.files import Root
from pool3.storage.schemas import FEATURES_SCHEMA

log = logging.getLogger(__name__)


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
    then: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    schema: StructType = FEATURES_SCHEMA,
    worker_hook: Callable[[], None] | None = None,
    root: Root | None = None,
) -> DataFrame:
    """Feature rows (``FEATURES_SCHEMA``) for a frame of files (``path, length``).

    The workers read each file under ``root`` (the listing's, see
    :func:`pool3.featurize.listing.input_images`); a frame that carries the bytes in a
    ``content`` column (tests, benchmarks) needs no root.

    ``model`` is a bundle (broadcast here) or one already shipped with
    :func:`pool3.featurize.shipping.ship_model`, e.g. to share workers warmed by
    :class:`pool3.featurize.shipping.WarmUp`. With ``then``, each frame of feature rows is
    passed through it in the worker and the result has ``schema`` instead.
    ``worker_hook`` runs in the worker after each frame it sends (tests inject faults).
    """
    label_mode, _ = parse_label_mode(config.featurize.labels)
    shipped = model if isinstance(model, ShippedModel) else ship_model(spark, model, config)
    opts = WorkerOptions(
        fingerprint=shipped.fingerprint,
        runtime=shipped.runtime,
        precision=shipped.row_precision,
        batch_size=config.model.batch_size,
        worker_memory_mb=config.featurize.worker_memory_mb,
        max_pixels=config.featurize.max_pixels,
        max_file_bytes=config.featurize.max_file_mb * MB,
        apply_exif_orientation=config.featurize.apply_exif_orientation,
        label_mode=label_mode,
        root=root,
        manifest=manifest,
        after_batch=worker_hook,
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

        rows = featurize_batches(frames, shipped.featurizer, opts, record)
        yield from rows if then is None else map(then, rows)

    log.info(
        "featurize: %s %s, batch size %s, %d threads per worker",
        shipped.runtime,
        opts.precision,
        opts.batch_size or f"auto ({auto_batch_size(opts.worker_memory_mb)} on CPU, 64 on GPU)",
        shipped.threads,
    )
    return files.mapInPandas(run, schema).select(*schema.fieldNames())


class Progress:
    """Logs the running image count, rate and time left every ``every`` images, from a
    driver thread (counts arrive as tasks finish: one partition at a time)."""

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
                left = max(self._total - done, 0) / rate if rate > 0 else 0.0
                log.info(
                    "featurized %d/%d images (%.0f%%), %.1f images/s, ETA %s",
                    done,
                    self._total,
                    100 * done / max(self._total, 1),
                    rate,
                    time.strftime("%H:%M:%S", time.gmtime(left)),
                )
                reported = done
