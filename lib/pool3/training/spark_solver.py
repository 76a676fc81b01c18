"""Train on the cluster for tables beyond the driver: ``spark`` (Newton) or ``mllib``.

``train.solver = "spark"`` (or ``"auto"`` when the float32 array does not fit the driver)
runs the driver's Newton iterations with the rows cached on the executors
(:mod:`pool3.training.spark_passes`): liblinear's objective and stopping rule, the same
model as ``newton`` up to rounding. ``train.solver = "mllib"`` fits Spark MLlib's
``OneVsRest(LinearSVC)`` (the plain hinge loss), kept for comparison. Either way the
features never reach the driver; the fitted model becomes the same
:class:`~pool3.training.classifier.LinearModel` as on the driver (float32 coefficients,
sorted classes, one row scoring ``classes[1]`` for two classes), so ``pool3 classify``
reads it unchanged, and the test set is scored on the executors with that LinearModel:
the report describes the saved model. Only ``(path, label, predicted, scores)`` of the
test set is collected::

    data = prepare(spark.read.parquet(path), config.train)  # rules and split: every solver's
    result = train_and_evaluate_spark(data, config.train, choice=Choice("spark", "..."))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.classification import LinearSVC, OneVsRest
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.config import TrainConfig, TrainParams
from pool3.connect import is_local_master, task_slots
from pool3.errors import DataError, spark_failure
from pool3.training.c_search import numeric_C
from pool3.training.classifier import LinearModel
from pool3.training.driver import train_and_evaluate
from pool3.training.duplicates import find_duplicates
from pool3.training.quality import MAX_SUSPECTS, suspected_label_errors
from pool3.training.result import TrainResult, evaluated
from pool3.training.rules import TrainingTable
from pool3.training.solvers import Choice, Fitted, driver_limit_mb
from pool3.training.spark_newton import fit_spark_newton, open_passes, train_rows
from pool3.training.spark_scores import check_test_size, test_scores, train_suspects

log = logging.getLogger(__name__)

_SCORES_SCHEMA = "path string, label string, predicted string, scores array<double>"


def spark_estimator(params: TrainParams, *, n_train: int, n_classes: int, parallelism: int) -> Any:
    """The unfitted MLlib estimator on columns ``label_index`` (double) and ``vector``.

    ``LinearSVC`` for two classes (label 1.0 = ``classes[1]``, scikit-learn's binary
    convention), else ``OneVsRest(LinearSVC)`` fitting ``parallelism`` classes at once.
    """
    # MLlib minimises (1/n) sum(hinge) + regParam/2 ||w||^2 (the intercept unpenalised).
    # Times C*n with regParam = 1/(C*n) that is C*sum(hinge) + 0.5||w||^2: scikit-learn's
    # LinearSVC(loss="hinge") objective (liblinear also penalises the intercept, lightly).
    svc = LinearSVC(
        featuresCol="vector",
        labelCol="label_index",
        regParam=1.0 / (numeric_C(params) * n_train),
        maxIter=params.max_iter,
        tol=params.tol,
        standardization=False,
        fitIntercept=True,
    )
    if n_classes == 2:
        return svc
    return OneVsRest(
        classifier=svc,
        featuresCol="vector",
        labelCol="label_index",
        parallelism=min(parallelism, n_classes),
    )


def describe(estimator: Any) -> str:
    """``Spark MLlib OneVsRest(LinearSVC, parallelism=2)`` or ``Spark MLlib LinearSVC``."""
    if isinstance(estimator, OneVsRest):
        return f"Spark MLlib OneVsRest(LinearSVC, parallelism={estimator.getParallelism()})"
    return "Spark MLlib LinearSVC"


def _binary_models(fitted: Any) -> list[Any]:
    return list(fitted.models) if hasattr(fitted, "models") else [fitted]


def _n_iter(models: list[Any]) -> int | None:
    """Largest iteration count over the binary fits; None where MLlib kept no summary."""
    found = [m.summary().totalIterations for m in models if m.hasSummary]
    return max(found) if found else None


def fit_mllib(data: TrainingTable, params: TrainParams, *, parallelism: int) -> Fitted:
    """Spark MLlib's ``OneVsRest(LinearSVC)`` (``LinearSVC`` for two classes)."""
    classes = data.train_classes
    estimator = spark_estimator(
        params, n_train=data.n_train, n_classes=len(classes), parallelism=parallelism
    )
    solver = describe(estimator)
    if params.loss != "hinge":
        log.info(
            "Spark MLlib's LinearSVC minimises the hinge loss; train.loss=%r applies to the "
            "other solvers only",
            params.loss,
        )
    # one partition per task slot, not the split's 200 shuffle partitions: each of MLlib's
    # many jobs then runs a few large tasks instead of 200 tiny ones
    train = (
        train_rows(data, classes)
        .filter(~F.col("is_test"))
        .select(
            F.col("y").cast("double").alias("label_index"),
            array_to_vector(F.col("features")).alias("vector"),
        )
        .repartition(task_slots(data.frame.sparkSession))
    )
    started = time.perf_counter()
    fitted = estimator.fit(train)
    seconds = time.perf_counter() - started
    models = _binary_models(fitted)
    n_iter = _n_iter(models)
    if n_iter is not None and n_iter >= params.max_iter:
        log.warning(
            "%s stopped at max_iter=%d before converging; the model may be sub-optimal: "
            "raise max_iter or lower C",
            solver,
            params.max_iter,
        )
    return Fitted(
        coef=np.vstack([m.coefficients.toArray() for m in models]).astype(np.float32),
        intercept=np.array([m.intercept for m in models], dtype=np.float32),
        classes=tuple(classes),
        estimator=solver,
        n_iter=n_iter,
        converged=None if n_iter is None else n_iter < params.max_iter,
        seconds=seconds,
        raw=fitted,
        extra={
            "loss_fitted": "hinge",
            "reg_param": 1.0 / (numeric_C(params) * data.n_train),
        },
    )


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
        The checked, split feature table (:func:`pool3.training.rules.prepare`).
    params : TrainParams
        ``C, max_iter, tol`` (``spark``: the default squared-hinge/l2/ovr objective;
        ``mllib``: ``penalty="l2"``, ``multi_class="ovr"``, the hinge loss).
    choice : Choice, keyword-only
        The solver and why (:func:`pool3.training.solvers.choose_solver`).
    parallelism : int, keyword-only
        ``mllib``: binary problems fitted at once (``train.spark_parallelism``).
    max_collect_mb : int, keyword-only
        ``train.max_collect_mb``: bounds the test set's predictions and scores collected to
        the driver (:func:`pool3.training.solvers.driver_limit_mb`), and with ``spark`` the
        active rows it holds by default (``active_rows_mb``, 0 for the default).
    duplicate_cosine : float, keyword-only, optional
        Search exact and near duplicates from this cosine (``spark``: over the rows it
        cached to fit): :attr:`TrainResult.duplicates`.
    scratch : str, keyword-only, optional
        ``spark``: a folder the executors and the driver share, through which the passes
        ship rows (:func:`pool3.training.spark_newton.open_passes`).

    Raises
    ------
    DataError
        Settings the solver cannot fit, or a test set too large to collect.
    ResourceError
        Spark ran out of memory or lost its JVM while fitting (with the setting to change).
    """
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
        limit = driver_limit_mb(max_collect_mb, local=is_local_master(data.frame.sparkSession))
        with spark_failure("scoring the test set"):
            if passes is not None:  # the rows the fit cached
                paths, y_test, y_pred, scores = test_scores(passes, data, model, limit)
                suspects = train_suspects(passes, data, model)
            else:
                paths, y_test, y_pred, scores = _collect_scores(data, model, limit)
                suspects = _train_suspects(data, model)
        result = evaluated(
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


def fit_and_evaluate(
    data: TrainingTable,
    params: TrainConfig,
    choice: Choice,
    *,
    duplicate_cosine: float | None = None,
    scratch: str | None = None,
) -> TrainResult:
    """Fit with ``choice`` (:func:`pool3.training.driver.pick_solver`): on the driver, or on
    the executors, evaluate on the held-out split, and search duplicates from
    ``duplicate_cosine`` (none: no search) where the rows are; ``scratch``: see
    :func:`train_and_evaluate_spark`."""
    if choice.on_driver:
        return train_and_evaluate(data, params, choice=choice, duplicate_cosine=duplicate_cosine)
    return train_and_evaluate_spark(
        data,
        params,
        choice=choice,
        duplicate_cosine=duplicate_cosine,
        scratch=scratch,
        parallelism=params.spark_parallelism,
        max_collect_mb=params.max_collect_mb,
        active_rows_mb=params.active_rows_mb,
    )
