"""The Spark featurize step: image files -> one feature row per file (``FEATURES_SCHEMA``).

The model is resolved once on the driver, shipped as a file, and built once per Python
worker (:func:`pool3.model.cached_featurizer`, whose cache lives in an importable module, so
reused workers keep it across tasks). Reading each file, decode, RGB conversion and resize
run in the worker; inference is batched inside ``mapInPandas``. A ``then`` function turns
each batch of feature rows into other rows in the same worker (scoring does so), so
features need not cross Arrow twice.

:class:`Telemetry` carries timings only, without accumulators (Spark Connect has none): the
first row of each frame a worker sends carries that frame's partition, decode and inference
seconds in a struct column that ``DataFrame.observe`` collects as the write runs, and that is
dropped before the write. Every count a run reports is read from the rows it wrote
(:mod:`pool3.commands.lifecycle`); the live :class:`Progress` counts finished tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from pool3.config import Config
from pool3.connect import is_connect
from pool3.extraction.batching import amx_flag, auto_batch_size
from pool3.extraction.hook import worker_hook
from pool3.extraction.kernel import MB, BatchStats, WorkerOptions, featurize_batches
from pool3.extraction.shipping import ShippedModel, ship_model
from pool3.images.labels import parse_label_mode
from pool3.model import ModelBundle
from pool3.storage.files import Root
from pool3.storage.schemas import FEATURES_SCHEMA

log = logging.getLogger(__name__)


#: the observed column: ``{part, decode, infer}`` on a frame's first row, null on the others
TIMING_COLUMN = "_pool3_timing"
TIMING_TYPE = StructType(
    [
        StructField("part", IntegerType()),
        StructField("decode", DoubleType()),
        StructField("infer", DoubleType()),
        StructField("wait", DoubleType()),
    ]
)


@dataclass
class Telemetry:
    """Timings of one featurize step, observed on its rows (``DataFrame.observe``).

    Read :meth:`summary` only after the action that ran the step has succeeded.
    """

    observation: Observation = field(default_factory=lambda: Observation("pool3_timing"))

    def observe(self, frame: DataFrame) -> DataFrame:
        return frame.observe(self.observation, F.collect_list(TIMING_COLUMN).alias("frames"))

    def summary(self) -> dict[str, Any]:
        frames = self.observation.get.get("frames") or []
        decode = sum(f["decode"] for f in frames)
        infer = sum(f["infer"] for f in frames)
        waits = [f["wait"] for f in frames if f["wait"] is not None]
        by_part: dict[int, float] = {}
        for f in frames:
            # with prefetch, decode overlaps inference: a worker's time is inference + waits
            spent = f["infer"] + (f["wait"] if f["wait"] is not None else f["decode"])
            by_part[f["part"]] = by_part.get(f["part"], 0.0) + spent
        seconds = sorted(by_part.values())
        median = seconds[len(seconds) // 2] if seconds else 0.0
        return {
            "decode_seconds": round(decode, 3),
            "inference_seconds": round(infer, 3),
            # None without prefetch (featurize.prefetch = false): decode is then busy time
            "prefetch_wait_seconds": round(sum(waits), 3) if waits or not frames else None,
            "partitions": len(seconds),
            "partition_seconds_max": round(max(seconds, default=0.0), 3),
            "partition_seconds_median": round(median, 3),
            "partition_skew": round(max(seconds, default=0.0) / median, 2) if median else None,
        }


def planned_batch_size(shipped: ShippedModel, config: Config) -> int:
    """The model batch size of a run: ``model.batch_size``, else, on CPU executors,
    :func:`pool3.extraction.batching.auto_batch_size` for the run's runtime and precision and
    whether every reporting host has AMX for it; 0 (the worker decides: 64 on a GPU) when
    the executors have GPUs or did not report."""
    if config.model.batch_size:
        return config.model.batch_size
    hosts = shipped.placement.hosts
    if not hosts or any(h.gpus for h in hosts):
        return 0
    need = amx_flag(shipped.precision)
    return auto_batch_size(
        config.featurize.worker_memory_mb,
        runtime=shipped.runtime,
        precision=shipped.precision,
        amx=need is not None and all(need in h.flags for h in hosts),
    )


def worker_options(
    shipped: ShippedModel,
    config: Config,
    *,
    label_mode: str,
    root: Root | None = None,
    manifest: dict[str, str] | None = None,
) -> WorkerOptions:
    """What the workers of a featurize step need besides the model, from the run's config
    (and ``after_batch`` from ``$POOL3_TEST_WORKER_HOOK``: :mod:`pool3.extraction.hook`)."""
    return WorkerOptions(
        fingerprint=shipped.fingerprint,
        runtime=shipped.runtime,
        precision=shipped.row_precision,
        batch_size=planned_batch_size(shipped, config),
        worker_memory_mb=config.featurize.worker_memory_mb,
        max_pixels=config.featurize.max_pixels,
        max_file_bytes=config.featurize.max_file_mb * MB,
        apply_exif_orientation=config.featurize.apply_exif_orientation,
        label_mode=label_mode,
        root=root,
        manifest=manifest,
        after_batch=worker_hook(),
        prefetch=config.featurize.prefetch,
    )


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
    root: Root | None = None,
) -> DataFrame:
    """Feature rows (``FEATURES_SCHEMA``) for a frame of files (``path, length``).

    The workers read each file under ``root`` (the listing's, see
    :func:`pool3.extraction.listing.input_images`); a frame that carries the bytes in a
    ``content`` column (tests, benchmarks) needs no root.

    ``model`` is a bundle (shipped here) or one already shipped with
    :func:`pool3.extraction.shipping.ship_model`, e.g. to share workers warmed by
    :class:`pool3.extraction.warmup.WarmUp`. With ``then``, each frame of feature rows is
    passed through it in the worker and the result has ``schema`` instead.
    """
    label_mode, _ = parse_label_mode(config.featurize.labels)
    shipped = model if isinstance(model, ShippedModel) else ship_model(spark, model, config)
    opts = worker_options(shipped, config, label_mode=label_mode, root=root, manifest=manifest)
    timed = telemetry is not None

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else -1
        stats: list[BatchStats] = []
        rows = featurize_batches(frames, shipped.featurizer, opts, stats.append)
        for frame in rows if then is None else map(then, rows):
            if timed:
                done = stats.pop() if stats else BatchStats()
                timing = {
                    "part": part,
                    "decode": done.decode_s,
                    "infer": done.infer_s,
                    "wait": done.wait_s if opts.prefetch else None,
                }
                column = ([timing] + [None] * (len(frame) - 1))[: len(frame)]
                frame = frame.assign(**{TIMING_COLUMN: column})
            yield frame

    log.info(
        "featurize: %s %s, batch size %s, %d threads per worker",
        shipped.runtime,
        opts.precision,
        opts.batch_size or "auto (64 on a GPU)",
        shipped.threads,
    )
    if telemetry is None:
        return files.mapInPandas(run, schema).select(*schema.fieldNames())
    with_timing = StructType([*schema.fields, StructField(TIMING_COLUMN, TIMING_TYPE)])
    out = files.mapInPandas(run, with_timing)
    return telemetry.observe(out).select(*schema.fieldNames())


class TaskCounter:
    """Finished and total tasks of the stages seen since :meth:`start` (a live estimate).

    Spark Connect reports them to a progress handler (Spark 4's
    ``SparkSession.registerProgressHandler``); Spark Classic has no such handler in Python, so
    there the stages are read from the status tracker. Neither uses accumulators.
    """

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._stages: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._connect = is_connect(spark)

    def __call__(self, stages: Any, inflight_tasks: int, operation_id: Any, done: bool) -> None:
        with self._lock:
            for st in stages or ():
                self._stages[st.stage_id] = (st.num_completed_tasks, st.num_tasks)

    def start(self) -> None:
        if self._connect:
            self._spark.registerProgressHandler(self)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._connect:
            self._spark.removeProgressHandler(self)  # type: ignore[arg-type]

    def tasks(self) -> tuple[int, int]:
        """(finished, total) tasks of the stages seen so far."""
        if not self._connect:  # Spark Classic: the JVM's status tracker
            tracker = self._spark.sparkContext.statusTracker()
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    with self._lock:
                        self._stages[stage_id] = (info.numCompletedTasks, info.numTasks)
        with self._lock:
            counts = list(self._stages.values())
        return sum(d for d, _ in counts), sum(t for _, t in counts)


class Progress:
    """Logs the estimated image count, rate and time left every ``every`` images, from a
    driver thread: images are counted by finished tasks (one partition at a time), as
    ``total * finished tasks / tasks`` of the run's stages."""

    def __init__(self, spark: SparkSession, *, every: int, total: int) -> None:
        self._every, self._total = every, total
        self._counter = TaskCounter(spark)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pool3-progress")
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        if self._every > 0:
            self._counter.start()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._every > 0:
            self._counter.stop()

    def _loop(self) -> None:
        reported = 0
        while not self._stop.wait(2.0):
            try:
                finished, tasks = self._counter.tasks()
            except Exception as err:  # progress is best effort; the run goes on
                log.debug("no task progress: %s", err)
                continue
            done = self._total * finished // tasks if tasks else 0
            if done // self._every > reported // self._every:
                rate = done / max(time.monotonic() - self._start, 1e-9)
                left = max(self._total - done, 0) / rate if rate > 0 else 0.0
                log.info(
                    "featurized ~%d/%d images (%.0f%%, %d/%d tasks), %.1f images/s, ETA %s",
                    done,
                    self._total,
                    100 * done / max(self._total, 1),
                    finished,
                    tasks,
                    rate,
                    time.strftime("%H:%M:%S", time.gmtime(left)),
                )
                reported = done
