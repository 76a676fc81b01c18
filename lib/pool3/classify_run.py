"""``pool3 classify``: featurize and predict in one Spark pass, classifier broadcast."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from pool3.classifier import LinearModel, load_model
from pool3.config import Config
from pool3.errors import ModelError
from pool3.featurize import Telemetry, featurize_files
from pool3.featurize_run import add_skipped_rows, errors_by_reason, finish_run, input_images
from pool3.io import abort_output, prepare_output
from pool3.model import load_bundle
from pool3.schemas import PREDICTION_COLUMNS, PREDICTIONS_SCHEMA
from pool3.shipping import WarmUp, ship_model

log = logging.getLogger(__name__)


def predict_frame(frame: pd.DataFrame, model: LinearModel, top_k: int) -> pd.DataFrame:
    """Prediction rows for feature rows (columns ``path, features, model, error``)."""
    n = len(frame)
    predicted: list[str | None] = [None] * n
    score: list[float | None] = [None] * n
    top_labels: list[list[str] | None] = [None] * n
    top_scores: list[list[float] | None] = [None] * n
    ok = [i for i, f in enumerate(frame["features"]) if f is not None]
    if ok:
        X = np.stack([np.asarray(frame["features"].iat[i], dtype=np.float32) for i in ok])
        labels, scores = model.top_k(X, min(top_k, len(model.classes)))
        for row, lab, sc in zip(ok, labels, scores, strict=True):
            predicted[row], score[row] = str(lab[0]), float(sc[0])
            top_labels[row] = [str(v) for v in lab]
            top_scores[row] = [float(v) for v in sc]
    out = pd.DataFrame(
        {
            "path": frame["path"].to_numpy(),
            "predicted": predicted,
            "score": pd.array(score, dtype="Float32"),
            "top_labels": top_labels,
            "top_scores": top_scores,
            "model": frame["model"].to_numpy(),
            "error": frame["error"].to_numpy(),
        }
    )
    return out[PREDICTION_COLUMNS]


def classify_files(
    spark: SparkSession, features: DataFrame, model: LinearModel, top_k: int
) -> DataFrame:
    """Predictions (``PREDICTIONS_SCHEMA``) for feature rows, the classifier broadcast."""
    broadcast = spark.sparkContext.broadcast(model)

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        clf = broadcast.value
        for frame in frames:
            yield predict_frame(frame, clf, top_k)

    return features.mapInPandas(run, PREDICTIONS_SCHEMA).select(*PREDICTION_COLUMNS)


def run_classify(
    spark: SparkSession,
    config: Config,
    *,
    input_path: str,
    model_dir: str,
    output_path: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Score every image under ``input_path`` with the classifier in ``model_dir``."""
    started = time.monotonic()
    model = load_model(model_dir)
    bundle = load_bundle(config.model.source, home=config.model.home or None)
    if model.fingerprint != bundle.fingerprint:
        raise ModelError(
            f"the classifier in {model_dir} was trained on features {model.fingerprint}, but "
            f"the featurizer is {bundle.fingerprint}: score with the model source it was "
            "trained with (model.source), or retrain on features of this model"
        )
    shipped = ship_model(spark, bundle, config)
    with WarmUp(spark, shipped, enabled=config.featurize.warm_up):
        files, total = input_images(spark, config, input_path)
        target = prepare_output(spark, output_path, mode=config.output.mode, run_id=run_id)
    tel = Telemetry.create(spark)
    try:
        cfg = replace(config, featurize=replace(config.featurize, labels="none"))

        def predictions(frame: DataFrame) -> DataFrame:
            feats = featurize_files(spark, frame, shipped, cfg, telemetry=tel)
            return classify_files(spark, feats, model, config.classify.top_k)

        predictions(files).write.mode("overwrite").parquet(target.staging)
        add_skipped_rows(spark, files, target.staging, total, predictions)
        table = spark.read.parquet(target.staging)
        by_reason = errors_by_reason(table)
        errors = sum(by_reason.values())
        summary = {
            "input": input_path,
            "output": target.final,
            "images": total,
            "errors": errors,
            "errors_by_reason": by_reason,
            "error_rate": round(errors / total, 6),
            "classifier": model_dir,
            "model": bundle.fingerprint,
            "wall_seconds": round(time.monotonic() - started, 3),
            **tel.summary(),
        }
        finish_run(
            spark,
            target,
            config,
            command="classify",
            summary=summary,
            run_id=run_id,
            inputs={"images": input_path, "classifier": model_dir},
            counts={"images": total, "errors": errors},
            durations={"total": summary["wall_seconds"]},
        )
    except BaseException:
        abort_output(spark, target)
        raise
    return summary
