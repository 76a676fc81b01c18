"""``pool3 train``: read the feature table, fit (driver or Spark MLlib), write model + report."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from pool3.config import Config, TrainParams
from pool3.errors import DataError, OutputError, ThresholdError
from pool3.report.write import summary_line, write_report
from pool3.storage.manifest import build_run_manifest
from pool3.storage.outputs import check_run_id, read_committed
from pool3.training.classifier import save_model
from pool3.training.rules import TrainingTable, prepare
from pool3.training.sklearn_solver import train_and_evaluate
from pool3.training.spark_solver import train_and_evaluate_spark

log = logging.getLogger(__name__)

#: Bytes per collected feature row: 2048 float32 in Arrow, then numpy, with overheads.
ROW_BYTES = 2048 * 4 * 3


def prepare_model_dir(model_dir: str, *, mode: str, run_id: str | None = None) -> tuple[Path, Path]:
    """(final, staging) for a local model directory; refuses an existing one unless overwrite.

    With ``run_id`` the model goes to ``model_dir/run_id=<run_id>`` and a re-run of the same
    id replaces it (as ``--run-id`` does for featurize and classify outputs).
    """
    final = Path(model_dir).expanduser().absolute()
    if run_id is not None:
        final = final / f"run_id={check_run_id(run_id)}"
    if final.exists() and any(final.iterdir()) and mode != "overwrite" and run_id is None:
        raise OutputError(
            f"model directory {final} exists and is not empty: use --mode overwrite to replace "
            "it, or choose another --output"
        )
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    except OSError as err:
        raise OutputError(f"cannot write the model directory {final}: {err}") from err
    return final, staging


def _swap_in(staging: Path, final: Path) -> None:
    trash = None
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
    os.replace(staging, final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _too_big(features_path: str, n: int, size_mb: float, max_collect_mb: int) -> DataError:
    return DataError(
        f"the feature table {features_path} has {n} usable rows, about {size_mb:.0f} MB on "
        f"the driver, above train.max_collect_mb={max_collect_mb}: raise it (and "
        "spark.driver.memory), train on the cluster with train.solver = 'spark' (needs "
        "penalty='l2', multi_class='ovr'), or train on a sample of the table"
    )


def spark_reason(
    data: TrainingTable, params: TrainParams, *, features_path: str, max_collect_mb: int
) -> str | None:
    """Why to train with Spark MLlib, or None to collect the rows and fit on the driver.

    ``solver="spark"`` always trains on Spark; ``"auto"`` does when the usable rows
    (``ROW_BYTES`` each on the driver) exceed ``max_collect_mb`` and the settings are ones
    MLlib fits. ``liblinear``/``sgd`` above the limit raise :class:`DataError`. Either way
    the split is the one ``data`` already holds.
    """
    if params.solver == "spark":
        return "solver='spark' as configured"
    n = data.counts["rows_used"]
    size_mb = n * ROW_BYTES / 2**20
    if size_mb <= max_collect_mb:
        log.info("collecting %d feature rows (~%.0f MB) to the driver", n, size_mb)
        return None
    if params.solver == "auto" and params.spark_compatible:
        return f"{n} rows (~{size_mb:.0f} MB) exceed train.max_collect_mb={max_collect_mb}"
    raise _too_big(features_path, n, size_mb, max_collect_mb)


def run_train(
    spark: SparkSession,
    config: Config,
    *,
    features_path: str,
    model_dir: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Fit the classifier on a feature table and write the model and its report.

    Returns the metrics. Raises DataError for unusable data and ThresholdError when accuracy
    is below ``train.min_accuracy`` (the model is not written then).
    """
    started = time.monotonic()
    params = config.train
    final, staging = prepare_model_dir(model_dir, mode=config.output.mode, run_id=run_id)
    try:
        data = prepare(read_committed(spark, features_path, made_by="pool3 featurize"), params)
        limit = params.max_collect_mb
        why = spark_reason(data, params, features_path=features_path, max_collect_mb=limit)
        if why is None:
            result = train_and_evaluate(data, params)
        else:
            result = train_and_evaluate_spark(
                data,
                params,
                parallelism=params.spark_parallelism,
                max_collect_mb=limit,
                why=why,
            )
        metrics = result.metrics
        if metrics["accuracy"] < config.train.min_accuracy:
            raise ThresholdError(
                f"accuracy {metrics['accuracy']:.1%} is below train.min_accuracy="
                f"{config.train.min_accuracy:.1%}; the model was not written"
            )
        save_model(result.classifier, staging)
        write_report(result, staging)
        manifest = build_run_manifest(
            run_id=run_id,
            command="train",
            inputs={"features": features_path},
            counts={**result.counts, "n_train": result.n_train, "n_test": result.n_test},
            durations={"fit": result.fit_seconds, "total": time.monotonic() - started},
            config=config,
            model_fingerprint=result.fingerprint,
            extra={"solver": result.solver, "accuracy": metrics["accuracy"]},
        )
        (staging / "_pool3_manifest.json").write_text(json.dumps(manifest, indent=2))
        (staging / "_SUCCESS").write_text("")
        _swap_in(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    line = summary_line({**metrics, "n_test": result.n_test})
    log.info("%s; model and report in %s", line, final)
    return {**metrics, "summary_line": line, "model_dir": str(final)}
