"""Scoring on the executors: feature rows to prediction rows, fused with featurization.

:func:`classify_files` runs the featurize kernel and the classifier in one ``mapInPandas``
pass: each batch of feature rows is scored in the same Python worker, so the 2048 floats of
a row never cross Arrow (they did twice when featurize and predict were two passes). The
classifier is small (``n_classes x 2048`` floats) and travels in the task closure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from pool3.config import Config
from pool3.extraction.shipping import ShippedModel
from pool3.extraction.step import Telemetry, featurize_files
from pool3.storage.files import Root
from pool3.storage.schemas import PREDICTION_COLUMNS, PREDICTIONS_SCHEMA
from pool3.training.classifier import LinearModel

#: the columns a prediction adds to a feature row
PREDICTED = ("predicted", "score", "top_labels", "top_scores")


def predict_columns(
    features: pd.Series, rows: list[int], model: LinearModel, top_k: int
) -> dict[str, list[Any]]:
    """``predicted``, ``score``, ``top_labels``, ``top_scores`` for a column of feature
    vectors, scored at ``rows`` (the others stay None)."""
    n = len(features)
    out: dict[str, list[Any]] = {k: [None] * n for k in PREDICTED}
    if rows:
        X = np.stack([np.asarray(features.iat[i], dtype=np.float32) for i in rows])
        labels, scores = model.top_k(X, min(top_k, len(model.classes)))
        for row, lab, sc in zip(rows, labels, scores, strict=True):
            out["predicted"][row], out["score"][row] = str(lab[0]), float(sc[0])
            out["top_labels"][row] = [str(v) for v in lab]
            out["top_scores"][row] = [float(v) for v in sc]
    return out


def predict_frame(frame: pd.DataFrame, model: LinearModel, top_k: int) -> pd.DataFrame:
    """Prediction rows for feature rows (columns ``path, features, model, runtime,
    precision, error``)."""
    ok = [i for i, f in enumerate(frame["features"]) if f is not None]
    predicted = predict_columns(frame["features"], ok, model, top_k)
    out = pd.DataFrame(
        {
            "path": frame["path"].to_numpy(),
            **predicted,
            "score": pd.array(predicted["score"], dtype="Float32"),
            "model": frame["model"].to_numpy(),
            "runtime": frame["runtime"].to_numpy(),
            "precision": frame["precision"].to_numpy(),
            "error": frame["error"].to_numpy(),
        }
    )
    return out[PREDICTION_COLUMNS]


def classify_files(
    spark: SparkSession,
    files: DataFrame,
    shipped: ShippedModel,
    model: LinearModel,
    config: Config,
    *,
    telemetry: Telemetry | None = None,
    root: Root | None = None,
) -> DataFrame:
    """Predictions (``PREDICTIONS_SCHEMA``) for a frame of files (``path, length``) under
    ``root`` (see :func:`pool3.extraction.step.featurize_files`)."""
    top_k = config.classify.top_k

    def predict(features: pd.DataFrame) -> pd.DataFrame:
        return predict_frame(features, model, top_k)

    return featurize_files(
        spark,
        files,
        shipped,
        config,
        telemetry=telemetry,
        then=predict,
        schema=PREDICTIONS_SCHEMA,
        root=root,
    )
