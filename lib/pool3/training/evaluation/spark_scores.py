"""The ``spark`` solver's model scored on the rows it cached: the test set and the training
images whose label it disagrees with, without reading the feature table again.

The cached blocks (:class:`~pool3.training.newton.spark_passes.SparkPasses`) hold every usable row
with its id; a job over the test blocks returns each row's scores
(:meth:`~pool3.training.classifier.LinearModel.decision_function`, the saved model's own),
split over several jobs where they exceed what one job may ship; a job over the training
blocks returns only each partition's worst-margin mistakes. Paths and labels come from the
feature table by id (two small columns, no features).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.errors import DataError
from pool3.training.classifier import LinearModel
from pool3.training.evaluation.quality import MAX_SUSPECTS, suspected_label_errors
from pool3.training.newton.spark_blocks import rows_of
from pool3.training.newton.spark_passes import SparkPasses
from pool3.training.table.rules import TrainingTable

#: Driver bytes per collected test row besides its scores: path, labels, pandas overheads.
TEST_ROW_BYTES = 400
_SCHEMA = pa.schema([("id", pa.binary()), ("y", pa.binary()), ("scores", pa.binary())])


def _scored(
    model: LinearModel, n_features: int, pick: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow: each batch's ``(ids, y, scores)`` narrowed by ``pick`` (row indices)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for batch in batches:
            if batch.num_rows:
                X, y, _, ids, _ = rows_of(batch, n_features)
                scores = model.decision_function(X)
                keep = pick(ids, y, scores)
                found.append((ids[keep], y[keep], scores[keep]))
        if found:
            ids, y, scores = (np.concatenate(p) for p in zip(*found, strict=True))
            keep = pick(ids, y, scores)  # the partition's own pick over its blocks' picks
            yield pa.RecordBatch.from_pydict(
                {"id": [ids[keep].tobytes()], "y": [y[keep].tobytes()],
                 "scores": [np.ascontiguousarray(scores[keep]).tobytes()]},
                _SCHEMA,
            )  # fmt: skip

    return run


def _collect(
    passes: SparkPasses, frame: DataFrame, job: Any, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = passes.collect(frame, job, _SCHEMA)
    ids = [np.frombuffer(v, np.int64) for v in table.column("id").to_pylist()]
    y = [np.frombuffer(v, np.int32) for v in table.column("y").to_pylist()]
    scores = [
        np.frombuffer(v, np.float64).reshape(-1, k) for v in table.column("scores").to_pylist()
    ]
    if not ids:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty((0, k))
    return np.concatenate(ids), np.concatenate(y), np.concatenate(scores)


def _keys(frame: DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """``path, label`` of the rows of ``frame`` whose id is in ``ids``, indexed by id."""
    wanted = frame.sparkSession.createDataFrame(pd.DataFrame({"id": ids}), "id long")
    keys: pd.DataFrame = (
        frame.select(F.xxhash64("path").alias("id"), "path", "label")
        .join(F.broadcast(wanted), "id")
        .toPandas()
    )
    return keys.set_index("id")


def check_test_size(data: TrainingTable, n_classes: int, limit_mb: float) -> None:
    """DataError where the test set's predictions and scores would not fit what the driver
    may hold (``limit_mb``, :func:`pool3.training.solvers.choose.driver_limit_mb`)."""
    size_mb = data.n_test * (TEST_ROW_BYTES + 8 * n_classes) / 2**20
    if size_mb > limit_mb:
        raise DataError(
            f"the test set has {data.n_test} images, about {size_mb:.0f} MB of predictions "
            f"and scores on the driver, above the {limit_mb:.0f} MB it may hold "
            "(train.max_collect_mb, within 60% of its available memory): raise it (and "
            "spark.driver.memory), or lower train.test_size"
        )


def test_scores(
    passes: SparkPasses, data: TrainingTable, model: LinearModel, limit_mb: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(paths, labels, predicted, scores)`` of the test rows, sorted by path."""
    k = len(model.classes)
    check_test_size(data, k, limit_mb)
    jobs = passes.jobs_for(data.n_test * (8 * k + 12))
    test_blocks = passes.blocks.filter(F.col("test"))
    parts = []
    for part in range(jobs):

        def mine(ids: np.ndarray, y: np.ndarray, s: np.ndarray, part: int = part) -> np.ndarray:
            return np.flatnonzero(ids % jobs == part)

        parts.append(_collect(passes, test_blocks, _scored(model, passes.n_features, mine), k))
    ids, _, scores = (np.concatenate(p) for p in zip(*parts, strict=True))
    keys = _keys(data.frame.filter(F.col("is_test")), ids).loc[ids]
    order = np.argsort(keys["path"].to_numpy().astype(str), kind="stable")
    classes = np.asarray(model.classes)
    return (
        keys["path"].to_numpy().astype(str)[order],
        keys["label"].to_numpy().astype(str)[order],
        classes[np.argmax(scores[order], axis=1)] if len(order) else np.empty(0, str),
        scores[order],
    )


def train_suspects(
    passes: SparkPasses, data: TrainingTable, model: LinearModel
) -> list[dict[str, Any]]:
    """Training images predicted as another class, worst margin first; only the worst of
    each partition reach the driver."""

    def worst(ids: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
        given = s[np.arange(len(y)), np.clip(y, 0, s.shape[1] - 1)]
        margin = np.where((y >= 0) & (np.argmax(s, axis=1) != y), s.max(axis=1) - given, -np.inf)
        top = np.argsort(-margin, kind="stable")[: 2 * MAX_SUSPECTS]
        return top[np.isfinite(margin[top])]

    train_blocks = passes.blocks.filter(~F.col("test"))
    job = _scored(model, passes.n_features, worst)
    ids, y, scores = _collect(passes, train_blocks, job, len(model.classes))
    if not len(ids):
        return []
    paths = _keys(data.frame.filter(~F.col("is_test")), ids).loc[ids]["path"].to_numpy()
    order = np.argsort(paths.astype(str), kind="stable")  # ties as the driver's: path order
    return suspected_label_errors(
        paths.astype(str)[order],
        np.asarray(model.classes)[y[order]],
        scores[order],
        model.classes,
        split="train",
    )
