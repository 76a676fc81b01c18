"""The one entry point that fits and evaluates, whatever solver the table gets.

``pool3 train`` and :func:`pool3.train` both call :func:`fit_and_evaluate` with the solver
:func:`pool3.training.driver.pick_solver` chose: the driver solvers
(:func:`pool3.training.driver.train_and_evaluate`) or the cluster's
(:func:`pool3.training.spark_solver.train_and_evaluate_spark`), each fitting, scoring the
held-out split and searching duplicates where its rows are.
"""

from __future__ import annotations

from pool3.config import TrainConfig
from pool3.training.driver import train_and_evaluate
from pool3.training.result import TrainResult
from pool3.training.rules import TrainingTable
from pool3.training.solvers import Choice
from pool3.training.spark_solver import train_and_evaluate_spark


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
