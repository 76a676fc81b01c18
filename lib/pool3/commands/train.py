"""``pool3 train``: read the feature table, fit (driver or cluster), write model + report."""

from __future__ import annotations

import logging
import time
from typing import Any

from pyspark.sql import SparkSession

from pool3.commands.lifecycle import output_run
from pool3.config import Config
from pool3.errors import OutputError, ThresholdError, damaged_input
from pool3.report.write import metrics_doc, report_files, summary_line
from pool3.storage.fs import join
from pool3.storage.manifest import build_run_manifest
from pool3.storage.outputs import commit_output, read_committed
from pool3.training.classifier import model_files
from pool3.training.evaluation.quality import accuracy_without
from pool3.training.evaluation.result import TrainResult
from pool3.training.fit import train_table

log = logging.getLogger(__name__)


def run_train(
    spark: SparkSession,
    config: Config,
    *,
    features_path: str,
    model_dir: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Fit the classifier on a feature table and write the model and its report (then, with
    ``--mlflow``, log the run: :mod:`pool3.tracking.track`).

    Returns the metrics. Raises DataError for unusable data and ThresholdError when accuracy
    is below ``train.min_accuracy`` (the model is not written then).
    """
    started = time.monotonic()
    with output_run(spark, model_dir, config, run_id=run_id, command="train") as target:
        if target.mode == "incremental" and target.existing == "complete":
            raise OutputError(
                f"model directory {target.final} exists and train has no incremental mode: "
                "use --mode overwrite to replace it, or another --run-id"
            )
        table = read_committed(spark, features_path, made_by="pool3 featurize")
        # the spark solver's passes ship rows through a folder in the run's staging
        scratch = join(target.staging, "_pool3_scratch")
        with damaged_input(f"reading {features_path}"):  # a part damaged in place
            result = train_table(table, config, scratch=scratch)
        accuracy, gate = result.metrics["accuracy"], config.train.min_accuracy
        if accuracy < gate:
            raise ThresholdError(
                f"accuracy {accuracy:.1%} is below train.min_accuracy={gate:.1%}; the model "
                "was not written"
            )
        manifest = _manifest(result, config, run_id, features_path, started)
        report = config.report
        px = report.thumbnail_px if report.thumbnails else None
        reported = report_files(result, duplicates=result.duplicates, spark=spark, thumbnail_px=px)
        files = {**model_files(result.classifier), **reported}
        commit_output(spark, target, manifest=manifest, extra_files=files)
    tracked = None
    if config.mlflow.enabled:
        from pool3.tracking.track import track_train

        tracked = track_train(
            spark,
            config,
            doc=metrics_doc(result, result.duplicates),
            files=reported,
            classifier=result.classifier,
            model_dir=target.final,
            features_path=features_path,
        )
    return _summary(result, target.final, tracked)


def _manifest(
    result: TrainResult,
    config: Config,
    run_id: str | None,
    features_path: str,
    started: float,
) -> dict[str, Any]:
    """The run manifest of a training run (``_pool3_manifest.json``)."""
    search = result.c_search
    return build_run_manifest(
        run_id=run_id,
        command="train",
        inputs={"features": features_path},
        counts={**result.counts, "n_train": result.n_train, "n_test": result.n_test},
        durations={
            "fit": result.fit_seconds,
            **({"C_search": search["seconds"]} if search else {}),
            "total": time.monotonic() - started,
        },
        config=config,
        model_fingerprint=result.fingerprint,
        extra={
            "solver": result.solver,
            "C": result.params.C,
            "accuracy": result.metrics["accuracy"],
        },
    )


def _summary(result: TrainResult, model_dir: str, tracked: dict[str, Any] | None) -> dict[str, Any]:
    """What ``pool3 train`` returns and prints (:mod:`pool3.commands.summary`)."""
    metrics, duplicates = result.metrics, result.duplicates
    leakage = None
    if duplicates is not None:
        leakage = accuracy_without(
            result.y_test, result.y_pred, result.paths_test, duplicates.leaked_test
        )
    line = summary_line({**metrics, "n_test": result.n_test})
    log.debug("%s; model and report in %s", line, model_dir)
    return {
        **metrics,
        "summary_line": line,
        "model_dir": model_dir,
        "duplicate_counts": duplicates.counts if duplicates else None,
        "leakage": leakage,
        "suspected_label_errors": len(result.suspects),
        "rows": dict(result.counts),
        "n_train": result.n_train,
        "C_search": result.c_search,
        "fit": result.classifier.meta.get("newton"),
        "spark_jobs": result.classifier.meta.get("spark_jobs"),
        "mlflow": tracked,
    }
