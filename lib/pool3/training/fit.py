"""The one entry point of training: choose the solver, fit, evaluate, search duplicates.

``pool3 train``, :func:`pool3.train` and :class:`pool3.SVMClassifier` all call
:func:`train_table`: the table's rules (:func:`pool3.training.table.rules.prepare`), the
solver :func:`pool3.training.solvers.choose.pick_solver` chooses (the one chooser), then
:func:`fit_and_evaluate`: the driver solvers
(:func:`pool3.training.solvers.driver.train_and_evaluate`) or the cluster's
(:func:`pool3.training.solvers.spark_solver.train_and_evaluate_spark`), each fitting,
scoring the held-out split and searching duplicates where its rows are.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from pool3.config import Config, TrainConfig
from pool3.training.evaluation.result import TrainResult
from pool3.training.solvers.choose import Choice, pick_solver
from pool3.training.solvers.driver import train_and_evaluate
from pool3.training.solvers.spark_solver import train_and_evaluate_spark
from pool3.training.table.rules import TrainingTable, prepare


def fit_and_evaluate(
    data: TrainingTable,
    params: TrainConfig,
    choice: Choice,
    *,
    duplicate_cosine: float | None = None,
    scratch: str | None = None,
) -> TrainResult:
    """Fit with ``choice`` (:func:`~pool3.training.solvers.choose.pick_solver`): on the
    driver, or on the executors, evaluate on the held-out split, and search duplicates from
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


def train_table(
    table: DataFrame,
    config: Config,
    *,
    scratch: str | None = None,
) -> TrainResult:
    """Prepare ``table`` (a feature table with a ``label`` column) under ``config.train``,
    choose the solver, fit, evaluate and search duplicates (``config.report.duplicates``);
    ``scratch``: see :func:`train_and_evaluate_spark`."""
    params = config.train
    data = prepare(table, params)
    choice = pick_solver(data, params)
    report = config.report
    cosine = report.duplicate_cosine if report.duplicates else None
    return fit_and_evaluate(data, params, choice, duplicate_cosine=cosine, scratch=scratch)
