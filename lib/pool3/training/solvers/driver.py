"""Fit on the driver (liblinear, SGD or float32 Newton) and evaluate on the held-out split.

The split is made before, on Spark, the same for every solver (:mod:`pool3.training.table.split`);
the rows come to the driver as one float32 array (:mod:`pool3.training.table.data`)::

    data = prepare(spark.read.parquet(path), config.train)
    result = train_and_evaluate(data, config.train)
    save_model(result.classifier, model_dir); write_report(result, model_dir)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from pool3.config import TrainParams
from pool3.duplicates.search import find_duplicates
from pool3.errors import DataError
from pool3.training.evaluation.quality import suspected_label_errors
from pool3.training.evaluation.result import TrainResult, evaluated
from pool3.training.newton.array_passes import ArrayPasses
from pool3.training.newton.method import SAMPLE_EVERY, SAMPLE_MIN, fit_newton, sample_start
from pool3.training.solvers.c_search import fold_of, numeric_C, search_C, search_C_newton
from pool3.training.solvers.choose import Choice, pick_solver
from pool3.training.solvers.fitted import Fitted
from pool3.training.solvers.sklearn_solver import fit_sklearn
from pool3.training.table.data import collect_split
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)

#: ``fit(X, y, params, *, quiet, rows, warm) -> Fitted`` of each driver solver
DriverFit = Callable[..., Fitted]


def weights_of(fitted: Fitted) -> np.ndarray:
    """A fit's weights as :func:`fit_newton` takes them: (n_features + 1, n_classes)."""
    coef, intercept = np.asarray(fitted.coef), np.asarray(fitted.intercept)
    if coef.shape[0] == 1:  # binary: class 0's problem is class 1's, negated
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return np.vstack([coef.T, intercept[None, :]]).astype(np.float64)


def fit_newton_arrays(
    X: np.ndarray,
    y: np.ndarray,
    params: TrainParams,
    *,
    quiet: bool = False,
    rows: np.ndarray | None = None,
    warm: Fitted | None = None,
) -> Fitted:
    """:func:`pool3.training.newton.method.fit_newton` on the rows of ``X`` (float32, C-contiguous,
    never copied; ``rows`` a boolean mask, e.g. a cross-validation fold), ``warm`` a fit of
    the same classes to start from (e.g. at the previous C)."""
    started = time.perf_counter()
    kept = y if rows is None else y[rows]
    classes = np.unique(kept)
    if len(classes) < 2:
        raise DataError(
            f"a linear SVM needs 2+ classes among the rows it fits, got {len(classes)} "
            f"({', '.join(repr(str(c)) for c in classes[:3])}); add images of other classes"
        )
    index = np.searchsorted(classes, y).clip(0, len(classes) - 1).astype(np.int32)
    passes = ArrayPasses(X, index, len(classes), rows=rows)
    W0 = weights_of(warm) if warm is not None else None
    if W0 is None and rows is None and params.warm_start:
        W0 = _sample_start(X, index, len(classes), params)
    fit = fit_newton(passes, C=numeric_C(params), tol=params.tol, max_iter=params.max_iter, W0=W0)
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "newton: %d passes over %d rows, %d Newton steps, %d CG steps on the %d active rows "
        "at most, %.1f s, converged=%s",
        fit.passes,
        len(kept),
        fit.newton_iters,
        fit.cg_iters,
        fit.held_peak_rows,
        fit.seconds,
        fit.converged,
    )
    fitted = Fitted.from_newton(
        fit,
        [str(c) for c in classes],
        estimator="newton (float32, driver)",
        max_iter=params.max_iter,
        quiet=quiet,
    )
    return replace(fitted, seconds=time.perf_counter() - started)  # with the warm start


def _sample_start(X: np.ndarray, y: np.ndarray, n_classes: int, params: TrainParams) -> Any:
    """Weights to start from: :func:`pool3.training.newton.method.sample_start` on one row in
    ``SAMPLE_EVERY`` of the array (read through a mask, not copied); None for a table too
    small to sample, or a sample that lacks a class."""
    every = SAMPLE_EVERY
    if len(y) // every < SAMPLE_MIN:
        return None
    mask = np.arange(len(y)) % every == 0
    sample = ArrayPasses(X, y, n_classes, rows=mask)
    fit = sample_start(
        sample, y[mask], len(y), C=numeric_C(params), tol=params.tol, max_iter=params.max_iter
    )
    if fit is None:
        return None
    log.info(
        "newton: warm start from %d rows (1 in %d) in %d Newton steps, %.1f s",
        int(mask.sum()),
        every,
        fit.newton_iters,
        fit.seconds,
    )
    return fit.W


def _search_newton(X: np.ndarray, y: np.ndarray, params: TrainParams) -> tuple[Any, Fitted]:
    """``C = "auto"`` with every fold at once (:func:`search_C_newton`): the search, and the
    folds' mean weights at the chosen C as a warm start for the final fit."""
    classes = np.unique(y)
    index = np.searchsorted(classes, y).astype(np.int32)
    fold = fold_of(y, params)
    passes = ArrayPasses(X, index, len(classes), fold=fold)
    found = search_C_newton(passes, len(classes), int(fold.max()) + 1, params)
    W = found.warm
    warm = Fitted(
        coef=W[:-1].T, intercept=W[-1], classes=tuple(str(c) for c in classes),
        estimator="", n_iter=None, converged=None, seconds=0.0,
    )  # fmt: skip
    return found.search, warm


DRIVER_FITS: dict[str, DriverFit] = {
    "liblinear": fit_sklearn,
    "sgd": fit_sklearn,
    "newton": fit_newton_arrays,
}


def train_and_evaluate(
    data: TrainingTable,
    params: TrainParams,
    *,
    choice: Choice | None = None,
    max_collect_mb: float = 0,
    duplicate_cosine: float | None = None,
) -> TrainResult:
    """Read the split rows, fit on the training part and evaluate on the test part.

    ``choice`` is the driver solver to run (default: the one
    :func:`~pool3.training.solvers.choose.pick_solver` picks, with ``max_collect_mb``). Returns
    the :class:`TrainResult`: the persisted-form classifier (with ``meta``: sizes, split,
    seed, params, solver), the metrics over every class, the test predictions, and the
    duplicates from ``duplicate_cosine`` (none: not searched), found on the driver's array.
    """
    if choice is None:
        choice = pick_solver(data, params, max_collect_mb=max_collect_mb)
    if not choice.on_driver:
        raise ValueError(f"{choice.name!r} is not a driver solver")
    fit = DRIVER_FITS[choice.name]
    params = replace(params, solver=choice.name)
    parts = collect_split(data, data.n_features)
    search, warm = None, None
    if params.C == "auto" and choice.name == "newton":
        search, warm = _search_newton(parts.X_train, parts.y_train, params)
        params = replace(params, C=search.chosen)
    elif params.C == "auto":
        # The folds (4/5 of the rows) run the solver that the full training set gets.
        search = search_C(parts.X_train, parts.y_train, params, fit)
        params = replace(params, C=search.chosen)
    fitted = fit(parts.X_train, parts.y_train, params, warm=warm)
    model = fitted.model(data, params, choice)
    if search is not None:
        model.meta["C_search"] = search.as_dict()
    scores = model.decision_function(parts.X_test)
    result = evaluated(
        model,
        fitted.raw,
        labels=data.classes,
        y_test=parts.y_test,
        y_pred=np.asarray(model.classes)[np.argmax(scores, axis=1)],
        paths_test=parts.paths_test,
        scores_test=scores,
        fit_seconds=fitted.seconds,
        params=params,
        counts=data.counts,
        n_train=len(parts.y_train),
        train_suspects=suspected_label_errors(
            parts.paths_train,
            parts.y_train,
            model.decision_function(parts.X_train),
            model.classes,
            split="train",
        ),
        rows=parts,
    )
    if duplicate_cosine is None:
        return result
    found = find_duplicates(
        data.frame, threshold=duplicate_cosine, seed=params.seed, dim=data.n_features, rows=parts
    )
    return replace(result, duplicates=found)
