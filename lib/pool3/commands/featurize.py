"""``pool3 featurize``: checks, the Spark step, the write, gates, and the atomic commit."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from pool3.commands.lifecycle import (
    finish_run,
    image_summary,
    output_run,
    row_count,
    staged_counts,
)
from pool3.commands.preload import Preload, model_for_run
from pool3.config import Config
from pool3.extraction.calibration import ship_for_input
from pool3.extraction.incremental import reuse_previous
from pool3.extraction.kernel import MB
from pool3.extraction.listing import Listing, input_images, on_default_fs, task_count
from pool3.extraction.shipping import ShippedModel
from pool3.extraction.step import Progress, Telemetry, featurize_files, planned_batch_size
from pool3.extraction.warmup import WarmUp
from pool3.images.labels import parse_label_mode, read_manifest
from pool3.model import ModelBundle
from pool3.storage.files import resolve, stat
from pool3.storage.outputs import OutputTarget
from pool3.storage.schemas import FEATURES_SCHEMA

log = logging.getLogger(__name__)


def run_featurize(
    spark: SparkSession,
    config: Config,
    *,
    input_path: str,
    output_path: str,
    run_id: str | None = None,
    timings: dict[str, float] | None = None,
    preload: Preload | None = None,
) -> dict[str, Any]:
    """Featurize every image under ``input_path`` into Parquet at ``output_path``.

    Returns the summary (also logged, and written as ``_pool3_summary.json`` in the output).
    Raises InputError / OutputError before any heavy work, ThresholdError past
    ``featurize.max_error_rate`` (nothing is committed then). ``timings`` holds seconds
    spent before this call (``session``); the summary's ``timings`` adds each step of the
    run (:class:`Steps`). ``preload``: the model loaded while the session started
    (:class:`pool3.commands.preload.Preload`).
    """
    started = time.monotonic()
    label_mode, manifest_path = parse_label_mode(config.featurize.labels)
    stat(resolve(on_default_fs(spark, input_path)), shown=input_path)  # before the model loads
    with output_run(spark, output_path, config, run_id=run_id, command="featurize") as target:
        return _featurize(
            spark,
            config,
            target,
            input_path=input_path,
            output_path=output_path,
            label_mode=label_mode,
            manifest_path=manifest_path,
            started=started,
            steps=Steps(dict(timings or {})),
            preload=preload,
        )


class Steps:
    """Seconds per step of a run, in the order they ran (the summary's ``timings``):
    ``model`` (load, placement, IR, shipping), ``listing``, ``warm_up`` (waiting for the
    workers after listing), ``write`` (the featurize job), ``counts``, ``commit`` (only in
    the summary returned and printed: the file is written by the commit)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 3)
        self._last = now


@dataclass
class _Input:
    """What the featurize job reads: the model as loaded and as shipped, the listed files
    with their listing, the labels manifest, and how long the warm-up took."""

    bundle: ModelBundle
    model: ShippedModel
    files: DataFrame
    listing: Listing
    manifest: dict[str, str] | None
    warmup_seconds: float | None


def _featurize(
    spark: SparkSession,
    config: Config,
    target: OutputTarget,
    *,
    input_path: str,
    output_path: str,
    label_mode: str,
    manifest_path: str | None,
    started: float,
    steps: Steps,
    preload: Preload | None,
) -> dict[str, Any]:
    """The run inside its output lock: inputs, the featurize job, counts and the commit."""
    inp = _load_input(
        spark,
        config,
        input_path=input_path,
        output_path=output_path,
        manifest_path=manifest_path,
        steps=steps,
        preload=preload,
    )
    ready = time.monotonic()
    tel = Telemetry()
    n_reused = _write(spark, config, target, inp, label_mode=label_mode, telemetry=tel)
    written = time.monotonic()
    steps.done("write")
    counts = staged_counts(spark, target.staging, FEATURES_SCHEMA, expected=inp.listing.total)
    steps.done("counts")
    featurized = inp.listing.total - n_reused
    summary = image_summary(
        input_path=input_path,
        target=target,
        listing=inp.listing,
        counts=counts,
        shipped=inp.model,
        started=started,
        telemetry=tel,
        featurized=featurized,
        reused=n_reused,
        unlabelled=counts["unlabelled"],
        startup_seconds=round(ready - started, 3),
        warmup_seconds=inp.warmup_seconds,
        featurize_seconds=round(written - ready, 3),
        timings=steps.seconds,
        batch_size=planned_batch_size(inp.model, config),
    )
    summary["images_per_second"] = round(featurized / max(summary["featurize_seconds"], 1e-9), 2)
    _commit(spark, config, target, inp, summary, input_path=input_path, reused=n_reused)
    steps.done("commit")  # in the summary returned and printed, not in the file it wrote
    if config.mlflow.enabled:
        from pool3.tracking.track import track_featurize

        summary["mlflow"] = track_featurize(spark, config, summary, target.final)
    return summary


def _load_input(
    spark: SparkSession,
    config: Config,
    *,
    input_path: str,
    output_path: str,
    manifest_path: str | None,
    steps: Steps,
    preload: Preload | None,
) -> _Input:
    """The model loaded and shipped (step ``model``), then the input listed and the labels
    manifest read (``listing``) while the workers warm up (``warm_up``)."""
    bundle, ir = model_for_run(config, preload)
    model, listed = ship_for_input(spark, config, bundle, input_path, exclude=output_path, ir=ir)
    steps.done("model")
    with WarmUp(spark, model, enabled=config.featurize.warm_up) as warm:
        files, listing = listed or input_images(spark, config, input_path, exclude=output_path)
        manifest = None
        if manifest_path:  # a path or URI, read through pyarrow.fs
            where = resolve(on_default_fs(spark, manifest_path))
            manifest = read_manifest(
                where.fs_path, filesystem=where.filesystem(), shown=manifest_path
            )
        steps.done("listing")
    steps.done("warm_up")
    return _Input(bundle, model, files, listing, manifest, warm.seconds)


def _write(
    spark: SparkSession,
    config: Config,
    target: OutputTarget,
    inp: _Input,
    *,
    label_mode: str,
    telemetry: Telemetry,
) -> int:
    """Featurize the input into ``target.staging``; in incremental mode over a committed
    output, only the files whose rows cannot be reused, and append the reused rows.
    Returns how many rows were reused."""
    todo, reused, hashed = inp.files, None, None
    if config.output.mode == "incremental" and target.existing == "complete":
        todo, reused, hashed = reuse_previous(
            spark,
            inp.files,
            target.final,
            inp.bundle.fingerprint,
            label_mode,
            inp.manifest,
            runtime=inp.model.runtime,
            precision=inp.model.row_precision,
            root=inp.listing.root,
            max_file_bytes=config.featurize.max_file_mb * MB,
            tasks=task_count(spark, inp.listing, config.featurize.partitions),
        )
    with Progress(spark, every=config.featurize.progress_every, total=inp.listing.total):
        rows = featurize_files(
            spark,
            todo,
            inp.model,
            config,
            manifest=inp.manifest,
            telemetry=telemetry,
            root=inp.listing.root,
        )
        rows.write.mode("overwrite").parquet(target.staging)
        # Counted from the rows, not from accumulators (which retried tasks inflate).
        n_reused = 0
        if reused is not None:
            before = row_count(spark, target.staging)
            reused.write.mode("append").parquet(target.staging)
            n_reused = row_count(spark, target.staging) - before
        if hashed is not None:
            hashed.unpersist()
    return n_reused


def _commit(
    spark: SparkSession,
    config: Config,
    target: OutputTarget,
    inp: _Input,
    summary: dict[str, Any],
    *,
    input_path: str,
    reused: int,
) -> None:
    """Gate and commit the staged rows with their manifest and summary (:func:`finish_run`)."""
    finish_run(
        spark,
        target,
        config,
        command="featurize",
        summary=summary,
        inputs={"images": input_path, "labels": config.featurize.labels},
        listing=inp.listing,
        shipped=inp.model,
        counts={"reused": reused},
        durations={k: summary[k] for k in ("startup_seconds", "featurize_seconds")},
    )
