"""``train.solver = "mllib"``: Spark MLlib's ``OneVsRest(LinearSVC)``, kept for comparison.

It minimises the plain hinge loss (whatever ``train.loss`` says) with ``regParam = 1 / (C
n)``, proportional to scikit-learn's ``0.5 ||w||^2 + C sum(hinge)``; the fitted model becomes
the same :class:`~pool3.training.classifier.LinearModel` as every other solver's.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from pyspark.ml.classification import LinearSVC, OneVsRest
from pyspark.ml.functions import array_to_vector
from pyspark.sql import functions as F

from pool3.config import TrainParams
from pool3.connect import task_slots
from pool3.training.solvers.c_search import numeric_C
from pool3.training.solvers.fitted import Fitted
from pool3.training.solvers.spark_newton import train_rows
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)


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
