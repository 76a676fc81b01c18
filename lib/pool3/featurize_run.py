"""``pool3 featurize``: checks, the Spark step, the write, gates, and the atomic commit."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool3.config import Config
from pool3.errors import InputError, ThresholdError
from pool3.featurize import (
    Progress,
    Telemetry,
    empty_files_frame,
    featurize_files,
    list_images,
    skipped_files,
)
from pool3.io import (
    OutputTarget,
    abort_output,
    build_run_manifest,
    check_input,
    commit_output,
    prepare_output,
)
from pool3.labels import labels_for_paths, parse_label_mode, read_manifest
from pool3.model import load_bundle
from pool3.schemas import FEATURE_COLUMNS, FEATURES_SCHEMA
from pool3.shipping import WarmUp, ship_model

log = logging.getLogger(__name__)

SUMMARY_NAME = "_pool3_summary.json"


def _reuse_previous(
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


def errors_by_reason(table: DataFrame) -> dict[str, int]:
    """``{category: count}`` of the rows whose ``error`` is set (``"<category>: <detail>"``)."""
    reasons = (
        table.filter(F.col("error").isNotNull())
        .groupBy(F.substring_index("error", ":", 1).alias("reason"))
        .count()
        .collect()
    )
    return dict(sorted((r["reason"], r["count"]) for r in reasons))


def _counts(spark: SparkSession, staging: str) -> dict[str, Any]:
    table = spark.read.schema(FEATURES_SCHEMA).parquet(staging)
    by_reason = errors_by_reason(table)
    stats = table.agg(
        F.count("*").alias("rows"),
        F.countDistinct("path").alias("paths"),
        F.count(F.when(F.col("label").isNull(), 1)).alias("unlabelled"),
    ).first()
    assert stats is not None
    return {
        "rows": stats["rows"],
        "distinct_paths": stats["paths"],
        "errors": sum(by_reason.values()),
        "errors_by_reason": by_reason,
        "unlabelled": stats["unlabelled"],
    }


def finish_run(
    spark: SparkSession,
    target: OutputTarget,
    config: Config,
    *,
    command: str,
    summary: dict[str, Any],
    run_id: str | None,
    inputs: dict[str, Any],
    counts: dict[str, int],
    durations: dict[str, float],
) -> None:
    """Log the summary, apply the error-rate gate, then commit with manifest and summary.

    Raises ThresholdError past ``featurize.max_error_rate`` (the caller aborts the output).
    """
    log.info("%s summary: %s", command, json.dumps(summary, sort_keys=True))
    limit = config.featurize.max_error_rate
    if summary["error_rate"] > limit:
        raise ThresholdError(
            f"{summary['errors']} of {summary['images']} images failed "
            f"({summary['error_rate']:.1%}), above featurize.max_error_rate={limit:.1%}: "
            f"{summary.get('errors_by_reason', {})}. Fix or remove the files, or raise the limit"
        )
    manifest = build_run_manifest(
        run_id=run_id,
        command=command,
        inputs=inputs,
        counts=counts,
        durations=durations,
        config=config,
        model_fingerprint=summary["model"],
        extra={"summary": summary},
    )
    commit_output(
        spark,
        target,
        manifest=manifest,
        extra_files={SUMMARY_NAME: json.dumps(summary, indent=2, sort_keys=True)},
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


def run_featurize(
    spark: SparkSession,
    config: Config,
    *,
    input_path: str,
    output_path: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Featurize every image under ``input_path`` into Parquet at ``output_path``.

    Returns the summary (also logged, and written as ``_pool3_summary.json`` in the output).
    Raises InputError / OutputError before any heavy work, ThresholdError past
    ``featurize.max_error_rate`` (nothing is committed then).
    """
    started = time.monotonic()
    label_mode, manifest_path = parse_label_mode(config.featurize.labels)
    check_input(spark, input_path)
    bundle = load_bundle(config.model.source, home=config.model.home or None)
    model = ship_model(spark, bundle, config)
    with WarmUp(spark, model, enabled=config.featurize.warm_up) as warm:
        files, total = input_images(spark, config, input_path)
        manifest = read_manifest(manifest_path) if manifest_path else None
        target = prepare_output(spark, output_path, mode=config.output.mode, run_id=run_id)
    ready = time.monotonic()
    tel = Telemetry.create(spark)
    try:
        if config.output.mode == "incremental" and target.existing == "complete":
            todo, reused = _reuse_previous(
                spark, files, target.final, bundle.fingerprint, label_mode, manifest
            )
            rows = featurize_files(spark, todo, model, config, manifest=manifest, telemetry=tel)
            rows = rows.unionByName(reused)
        else:
            rows = featurize_files(spark, files, model, config, manifest=manifest, telemetry=tel)
        with Progress(tel, every=config.featurize.progress_every, total=total):
            rows.write.mode("overwrite").parquet(target.staging)
            add_skipped_rows(
                spark,
                files,
                target.staging,
                total,
                lambda f: featurize_files(
                    spark, f, model, config, manifest=manifest, telemetry=tel
                ),
            )
        written = time.monotonic()
        counts = _counts(spark, target.staging)
        reused_count = counts["rows"] - tel.images.value
        if counts["rows"] != total or counts["distinct_paths"] != total:
            raise RuntimeError(
                f"internal error: {total} input files gave {counts['rows']} rows for "
                f"{counts['distinct_paths']} paths; the output is not committed"
            )
        summary = {
            "input": input_path,
            "output": target.final,
            "images": total,
            "featurized": tel.images.value,
            "reused": reused_count,
            **{k: counts[k] for k in ("errors", "errors_by_reason", "unlabelled")},
            "error_rate": round(counts["errors"] / total, 6),
            "model": bundle.fingerprint,
            "startup_seconds": round(ready - started, 3),
            "warmup_seconds": warm.seconds,
            "featurize_seconds": round(written - ready, 3),
            "wall_seconds": round(time.monotonic() - started, 3),
            **tel.summary(),
        }
        summary["images_per_second"] = round(
            tel.images.value / max(summary["featurize_seconds"], 1e-9), 2
        )
        finish_run(
            spark,
            target,
            config,
            command="featurize",
            summary=summary,
            run_id=run_id,
            inputs={"images": input_path, "labels": config.featurize.labels},
            counts={"images": total, "errors": counts["errors"], "reused": reused_count},
            durations={k: summary[k] for k in ("startup_seconds", "featurize_seconds")},
        )
    except BaseException:
        abort_output(spark, target)
        raise
    return summary
