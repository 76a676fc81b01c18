"""The run lifecycle the three commands share: own the output, write, gate, commit or abort.

Every command runs inside :func:`output_run`::

    with output_run(spark, output_path, config, run_id=run_id, command="featurize") as target:
        ...  # load the model, write rows (or files) to target.staging
        finish_run(spark, target, config, ...)  # or commit_output(...) for train

``output_run`` takes the output's lock and checks the mode first (so a second run on a live
output exits 4 before loading anything), and on any exception removes staging; it always
releases the lock. :func:`finish_run` logs the summary, applies the error-rate gate and
commits with the manifest and summary, so nothing half-done is ever committed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from pool3.config import Config
from pool3.connect import interrupt, is_connect
from pool3.errors import OutputError, ThresholdError, output_failure
from pool3.extraction.listing import Listing
from pool3.extraction.shipping import ShippedModel
from pool3.extraction.step import Telemetry
from pool3.storage.fs import exists, on_default_fs
from pool3.storage.lock import HELD
from pool3.storage.outputs import (
    OutputTarget,
    abort_output,
    build_run_manifest,
    commit_output,
    prepare_output,
    release_output,
)
from pool3.storage.tables import row_count as footer_rows
from pool3.storage.tables import table_counts

log = logging.getLogger(__name__)

SUMMARY_NAME = "_pool3_summary.json"


@contextmanager
def output_run(
    spark: SparkSession, path: str, config: Config, *, run_id: str | None, command: str
) -> Iterator[OutputTarget]:
    """Own ``path`` for the life of a run: prepare (lock, leftovers, mode checks), yield
    the target, abort (delete staging) on any exception, always release the lock."""
    target = prepare_output(
        spark,
        path,
        mode=config.output.mode,
        run_id=run_id,
        command=command,
        lock_timeout_s=config.output.lock_timeout_seconds,
    )
    _ACTIVE[id(target)] = (spark, target)
    try:
        with output_failure(path):  # a full disk, a read-only one: OutputError naming path
            yield target
    except BaseException as err:
        abort_output(spark, target)
        if isinstance(err, OutputError) and _left(spark, target.staging):
            raise OutputError(f"{err}; the new output is left in {target.staging}") from err
        raise
    finally:
        release_output(target)
        _ACTIVE.pop(id(target), None)


def _left(spark: SparkSession, staging: str) -> bool:
    """Whether ``staging`` is still there after the abort (a message names it only then)."""
    try:
        return exists(spark, staging)
    except OSError:
        return False


#: Outputs of the runs in progress in this process, for :func:`abort_all`.
_ACTIVE: dict[int, tuple[SparkSession, OutputTarget]] = {}


def abort_all() -> None:
    """Abort every run in progress in this process, and release every output lock it holds
    (the SIGTERM handler of :mod:`pool3.cli`)."""
    for spark, target in list(_ACTIVE.values()):
        _cancel_jobs(spark)  # so that no task writes into staging after it is deleted
        abort_output(spark, target)
    for lock in list(HELD):
        lock.release()


def _cancel_jobs(spark: SparkSession, wait_s: float = 20.0) -> None:
    """Interrupt this session's Spark jobs (the warm-up's included) and wait (up to
    ``wait_s``) until they end.

    Spark Classic's status tracker says when no job is active any more; a Spark Connect
    server has interrupted the operations (``interruptAll``) when the call returns, and its
    tasks stop within a moment (a short grace period).
    """
    try:
        interrupted = interrupt(spark)
        log.info("interrupted the run's Spark operations (%s)", max(interrupted, 0) or "all")
        if is_connect(spark):
            time.sleep(min(wait_s, CONNECT_GRACE_S))
            return
        tracker = spark.sparkContext.statusTracker()  # Spark Classic only
        deadline = time.monotonic() + wait_s
        while tracker.getActiveJobsIds() and time.monotonic() < deadline:
            time.sleep(0.1)
    except Exception as err:  # best effort: the staging is deleted either way
        log.warning("could not cancel the running Spark jobs: %s", err)


#: seconds a Connect server's interrupted tasks get to stop before the staging is deleted
CONNECT_GRACE_S = 2.0


def staged_counts(
    spark: SparkSession, staging: str, schema: StructType, *, expected: int
) -> dict[str, Any]:
    """Counts of what a run wrote to ``staging``, read back from the rows themselves.

    ``rows``, ``errors``, ``errors_by_reason`` and, for tables with labels,
    ``unlabelled``. Raises RuntimeError (nothing is committed then) unless there is exactly
    one row per input file: ``expected`` rows for ``expected`` distinct paths. Read on the
    driver from the Parquet files (:func:`pool3.storage.tables.table_counts`: footers and
    the ``path``, ``label``, ``error`` columns), not with Spark jobs.
    """
    stats = table_counts(on_default_fs(spark, staging))
    if stats.rows != expected or stats.paths != expected:
        raise RuntimeError(
            f"internal error: {expected} input files gave {stats.rows} rows for "
            f"{stats.paths} paths; the output is not committed"
        )
    counts: dict[str, Any] = {
        "rows": stats.rows,
        "errors": stats.errors,
        "errors_by_reason": stats.errors_by_reason,
    }
    if "label" in schema.fieldNames():
        counts["unlabelled"] = stats.unlabelled or 0
    return counts


def row_count(spark: SparkSession, path: str) -> int:
    """Rows of a Parquet folder (from the files' footers: no data is read, no Spark job)."""
    return footer_rows(on_default_fs(spark, path))


def image_summary(
    *,
    input_path: str,
    target: OutputTarget,
    listing: Listing,
    counts: dict[str, Any],
    shipped: ShippedModel,
    started: float,
    telemetry: Telemetry,
    **extra: Any,
) -> dict[str, Any]:
    """The summary of a run over images (featurize, classify): what was listed and ignored,
    errors by reason, the model's runtime and precision, timings; ``extra`` adds keys."""
    total = listing.total
    return {
        "input": input_path,
        "output": target.final,
        "images": total,
        **listing.summary(),
        "errors": counts["errors"],
        "errors_by_reason": counts["errors_by_reason"],
        "error_rate": round(counts["errors"] / total, 6),
        "model": shipped.fingerprint,
        "runtime": shipped.runtime,
        "precision": shipped.row_precision,
        **extra,
        "wall_seconds": round(time.monotonic() - started, 3),
        **telemetry.summary(),
    }


def finish_run(
    spark: SparkSession,
    target: OutputTarget,
    config: Config,
    *,
    command: str,
    summary: dict[str, Any],
    inputs: dict[str, Any],
    listing: Listing,
    shipped: ShippedModel,
    durations: dict[str, float],
    counts: dict[str, int] | None = None,
    manifest_extra: dict[str, Any] | None = None,
) -> None:
    """Log the summary, apply the error-rate gate, then commit with manifest and summary.

    The manifest counts images, ignored files and errors (plus ``counts``) and records the
    listing and where the model ran. Raises ThresholdError past
    ``featurize.max_error_rate`` (``--max-error-rate`` of featurize and classify alike, both
    runs of the featurize step; :func:`output_run` then aborts the output).
    """
    log.debug("%s summary: %s", command, json.dumps(summary, sort_keys=True))
    limit = config.featurize.max_error_rate
    if summary["error_rate"] > limit:
        raise ThresholdError(
            f"{summary['errors']} of {summary['images']} images failed "
            f"({summary['error_rate']:.1%}), above featurize.max_error_rate={limit:.1%}: "
            f"{summary.get('errors_by_reason', {})}. Fix or remove the files, or raise the limit "
            f"(--max-error-rate)"
        )
    manifest = build_run_manifest(
        run_id=target.run_id,
        command=command,
        inputs=inputs,
        counts={
            "images": listing.total,
            "ignored": listing.ignored,
            "errors": summary["errors"],
            **(counts or {}),
        },
        durations=durations,
        config=config,
        model_fingerprint=summary["model"],
        extra={
            "summary": summary,
            "model_runtime": shipped.placement.manifest(),
            "listing": listing.manifest(),
            **(manifest_extra or {}),
        },
    )
    commit_output(
        spark,
        target,
        manifest=manifest,
        extra_files={SUMMARY_NAME: json.dumps(summary, indent=2, sort_keys=True)},
    )
