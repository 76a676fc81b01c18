"""Train on the cluster for tables beyond the driver: ``spark`` (Newton) or ``mllib``.

``train.solver = "spark"`` (or ``"auto"`` when the float32 array does not fit the driver)
runs the Newton solver of :mod:`pool3.training.newton.method` over rows cached on the executors
(:mod:`pool3.training.solvers.spark_newton`): liblinear's objective and stopping rule, the same
model as ``newton`` up to rounding; the test set, the suspected label errors and the
duplicates are then scored from the same cached rows (:mod:`pool3.training.evaluation.spark_scores`,
:mod:`pool3.duplicates.blocks`). ``train.solver = "mllib"`` fits Spark MLlib's
``OneVsRest(LinearSVC)`` (:mod:`pool3.training.solvers.mllib_solver`), kept for comparison, and is
evaluated from the feature table. Either way the features never reach the driver whole;
the fitted model becomes the same :class:`~pool3.training.classifier.LinearModel` as on the
driver (float32 coefficients, sorted classes, one row scoring ``classes[1]`` for two
classes), so ``pool3 classify`` reads it unchanged, and the test set is scored on the
executors with that LinearModel: the report describes the saved model. Only ``(path,
label, predicted, scores)`` of the test set is collected::

    data = prepare(spark.read.parquet(path), config.train)  # rules and split: every solver's
    result = train_and_evaluate_spark(data, config.train, choice=Choice("spark", "..."))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.config import TrainParams
from pool3.connect import is_local_master
from pool3.duplicates.search import find_duplicates
from pool3.errors import DataError, spark_failure
from pool3.training.classifier import LinearModel
from pool3.training.evaluation.quality import MAX_SUSPECTS, suspected_label_errors
from pool3.training.evaluation.result import TrainResult, evaluated
from pool3.training.evaluation.spark_scores import check_test_size, test_scores, train_suspects
from pool3.training.newton.spark_passes import SparkPasses
from pool3.training.solvers.choose import Choice, driver_limit_mb
from pool3.training.solvers.fitted import Fitted
from pool3.training.solvers.mllib_solver import fit_mllib
from pool3.training.solvers.spark_newton import fit_spark_newton, open_passes
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)

_SCORES_SCHEMA = "path string, label string, predicted string, scores array<double>"


def score_frame(test: DataFrame, model: LinearModel) -> DataFrame:
    """``path, label, predicted, scores`` for rows ``path, label, features``, on the executors.

    ``scores`` is ``model.decision_function`` (column ``j`` scores ``model.classes[j]``).
    """
    classes = np.asarray(model.classes)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            X = np.empty((len(pdf), model.n_features), dtype=np.float32)
            for i, vector in enumerate(pdf["features"]):
                X[i] = vector
            scores = model.decision_function(X)
            yield pd.DataFrame(
                {
                    "path": pdf["path"],
                    "label": pdf["label"],
                    "predicted": classes[np.argmax(scores, axis=1)],
                    "scores": list(scores),
                }
            )

    return test.select("path", "label", "features").mapInPandas(score, _SCORES_SCHEMA)


def _collect_scores(
    data: TrainingTable, model: LinearModel, limit_mb: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    check_test_size(data, len(model.classes), limit_mb)
    test = data.frame.filter(F.col("is_test"))
    frame: pd.DataFrame = score_frame(test, model).toPandas()
    frame = frame.sort_values("path", kind="stable")
    scores = np.stack(frame["scores"].to_numpy()) if len(frame) else np.empty((0, 0))
    return (
        np.asarray(frame["path"].astype(str), dtype=np.str_),
        np.asarray(frame["label"].astype(str), dtype=np.str_),
        np.asarray(frame["predicted"].astype(str), dtype=np.str_),
        scores,
    )


def train_and_evaluate_spark(
    data: TrainingTable,
    params: TrainParams,
    *,
    choice: Choice,
    parallelism: int = 2,
    max_collect_mb: float = 0,
    active_rows_mb: float = 0,
    duplicate_cosine: float | None = None,
    scratch: str | None = None,
) -> TrainResult:
    """Fit on the cluster (``choice.name``: ``"spark"`` or ``"mllib"``) on the training rows
    of ``data`` and evaluate on its test rows.

    Parameters
    ----------
    data : TrainingTable
        The checked, split feature table (:func:`pool3.training.table.rules.prepare`).
    params : TrainParams
        ``C, max_iter, tol`` (``spark``: the default squared-hinge/l2/ovr objective;
        ``mllib``: ``penalty="l2"``, ``multi_class="ovr"``, the hinge loss).
    choice : Choice, keyword-only
        The solver and why (:func:`pool3.training.solvers.choose.pick_solver`).
    parallelism : int, keyword-only
        ``mllib``: binary problems fitted at once (``train.spark_parallelism``).
    max_collect_mb : int, keyword-only
        ``train.max_collect_mb``: bounds the test set's predictions and scores collected to
        the driver (:func:`pool3.training.solvers.choose.driver_limit_mb`), and with ``spark`` the
        active rows it holds by default (``active_rows_mb``, 0 for the default).
    duplicate_cosine : float, keyword-only, optional
        Search exact and near duplicates from this cosine (``spark``: over the rows it
        cached to fit): :attr:`TrainResult.duplicates`.
    scratch : str, keyword-only, optional
        ``spark``: a folder the executors and the driver share, through which the passes
        ship rows (:func:`pool3.training.solvers.spark_newton.open_passes`).

    Raises
    ------
    DataError
        Settings the solver cannot fit, or a test set too large to collect.
    ResourceError
        Spark ran out of memory or lost its JVM while fitting (with the setting to change).
    """
    _check_objective(params, choice)
    search, passes = None, None
    try:
        with spark_failure(f"fitting with train.solver = {choice.name!r}"):
            if choice.name == "mllib":
                fitted = fit_mllib(data, params, parallelism=parallelism)
            else:
                passes, n_fold = open_passes(
                    data,
                    params,
                    active_rows_mb=active_rows_mb,
                    max_collect_mb=max_collect_mb,
                    scratch=scratch,
                )
                fitted, search = fit_spark_newton(passes, data, params, n_fold)
        if search is not None:
            params = replace(params, C=search.chosen)
        model = fitted.model(data, params, choice)
        if search is not None:
            model.meta["C_search"] = search.as_dict()
        result = _evaluate(data, params, model, fitted, passes, max_collect_mb)
        if duplicate_cosine is None:
            return result
        with spark_failure("searching duplicates"):
            found = find_duplicates(
                data.frame,
                threshold=duplicate_cosine,
                seed=params.seed,
                dim=data.n_features,
                blocks=passes,
                n_rows=data.n_train + data.n_test,
            )
        return replace(result, duplicates=found)
    finally:
        if passes is not None:
            passes.close()


def _check_objective(params: TrainParams, choice: Choice) -> None:
    """Refuses an objective the cluster solver ``choice`` cannot fit."""
    if choice.name == "mllib" and (params.penalty != "l2" or params.multi_class != "ovr"):
        raise DataError(
            f"Spark MLlib cannot fit penalty={params.penalty!r}, multi_class="
            f"{params.multi_class!r}; use penalty='l2' and multi_class='ovr'."
        )
    if choice.name == "spark" and not params.newton_compatible:
        raise DataError(
            f"train.solver = 'spark' fits loss='squared_hinge', penalty='l2', "
            f"multi_class='ovr' only, not {params.loss!r}/{params.penalty!r}/"
            f"{params.multi_class!r}"
        )


def _evaluate(
    data: TrainingTable,
    params: TrainParams,
    model: LinearModel,
    fitted: Fitted,
    passes: SparkPasses | None,
    max_collect_mb: float,
) -> TrainResult:
    """Score the test set and the training mistakes on the executors (from the rows the fit
    cached, ``passes``, else from the feature table); only the test set's scores and the
    worst training mistakes reach the driver, within ``max_collect_mb``."""
    limit = driver_limit_mb(max_collect_mb, local=is_local_master(data.frame.sparkSession))
    with spark_failure("scoring the test set"):
        if passes is not None:  # the rows the fit cached
            paths, y_test, y_pred, scores = test_scores(passes, data, model, limit)
            suspects = train_suspects(passes, data, model)
        else:
            paths, y_test, y_pred, scores = _collect_scores(data, model, limit)
            suspects = _train_suspects(data, model)
    return evaluated(
        model,
        fitted.raw,
        labels=data.classes,
        y_test=y_test,
        y_pred=y_pred,
        paths_test=paths,
        scores_test=scores,
        fit_seconds=fitted.seconds,
        params=params,
        counts=data.counts,
        n_train=data.n_train,
        train_suspects=suspects,
    )


def _train_suspects(data: TrainingTable, model: LinearModel) -> list[dict[str, Any]]:
    """Training images predicted as another class, scored on the executors; only the worst
    ``MAX_SUSPECTS`` by margin reach the driver."""
    train = data.frame.filter(~F.col("is_test") & F.col("label").isin(list(model.classes)))
    scored = score_frame(train, model).filter(F.col("predicted") != F.col("label"))
    index = F.create_map(
        *[x for i, c in enumerate(model.classes) for x in (F.lit(c), F.lit(i + 1))]
    )
    margin = F.array_max("scores") - F.element_at("scores", index[F.col("label")])
    worst: pd.DataFrame = scored.orderBy(F.desc(margin), "path").limit(MAX_SUSPECTS).toPandas()
    if worst.empty:
        return []
    return suspected_label_errors(
        worst["path"].to_numpy(),
        worst["label"].to_numpy(),
        np.stack(worst["scores"].to_numpy()),
        model.classes,
        split="train",
    )
