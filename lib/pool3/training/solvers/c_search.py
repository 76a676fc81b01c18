"""``train.C = "auto"``: the SVM's C chosen by stratified cross-validation on the training split.

Each C of ``C_GRID`` (a decade apart around the tutorial's 1.0) is fitted ``train.cv_folds``
times by the same solver as the final fit on ``StratifiedKFold(shuffle=True,
random_state=seed)`` folds of the training images only (in path order: the same folds on the
driver and on Spark); the test split is never seen, so the reported test accuracy stays an
honest estimate. The C with the best mean fold accuracy wins; ties (within a hundredth of a
fold's image) go to the tied C nearest the tutorial's 1.0 on a log scale.

- The Newton solvers (``newton``, ``spark``: :func:`search_C_newton`) fit every fold's
  classes at once, as columns of one weight matrix (a fold's validation rows weigh 0 in its
  columns), so one pass over the table serves every fold; each C starts from the previous,
  smaller C's weights, and the first pass at each C gives the previous C's validation
  accuracy. On Spark that is one job per Newton step for all folds.
- liblinear and SGD (:func:`search_C`) fit fold by fold: ``len(C_GRID) * folds`` fits (25
  at the defaults), each copying its fold's rows (~0.8x the training array).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from pool3.config import TrainParams
from pool3.errors import DataError
from pool3.training.newton.method import fit_newton
from pool3.training.newton.passes import Columns, Passes

log = logging.getLogger(__name__)

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def numeric_C(params: TrainParams) -> float:
    """``params.C`` as the number a solver needs (``"auto"`` is resolved before any fit)."""
    if isinstance(params.C, str):
        raise ValueError(
            f"train.C = {params.C!r} reached a solver: it is resolved by train_and_evaluate "
            "(pool3.training.solvers.c_search) before fitting; pass a number"
        )
    return float(params.C)


@dataclass(frozen=True)
class CSearch:
    """The grid, each C's fold accuracies (mean, standard deviation) and the chosen C."""

    grid: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folds: int
    chosen: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: what ``metrics.json`` ``"C_search"`` and the model's meta hold."""
        return {
            "requested": "auto",
            "grid": list(self.grid),
            "cv_accuracy_mean": [round(m, 6) for m in self.mean],
            "cv_accuracy_std": [round(s, 6) for s in self.std],
            "folds": self.folds,
            "chosen": self.chosen,
            "seconds": round(self.seconds, 3),
        }


def n_folds(y: np.ndarray, params: TrainParams) -> int:
    """``train.cv_folds``, or the smallest class's count if lower; DataError below 2."""
    _, per_class = np.unique(y, return_counts=True)
    smallest = int(per_class.min()) if len(per_class) else 0
    if smallest < 2:
        raise DataError(
            f"train.C = 'auto' needs at least 2 training images per class for cross-validation; "
            f"the smallest class has {smallest}: add images or set a number for train.C"
        )
    return min(params.cv_folds, smallest)


def fold_of(y: np.ndarray, params: TrainParams) -> np.ndarray:
    """(n,) int32: the validation fold of each training row (``y`` in path order):
    ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)``."""
    folds = n_folds(y, params)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    fold = np.empty(len(y), dtype=np.int32)
    for f, (_, val_idx) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fold[val_idx] = f
    return fold


def _chosen(
    grid: tuple[float, ...], scores: np.ndarray, n: int, started: float, solver: str
) -> CSearch:
    """The C of the best mean fold accuracy (``scores`` (len(grid), folds)), ties to the C
    nearest 1.0 on a log scale; logged."""
    folds = scores.shape[1]
    means = [float(m) for m in scores.mean(axis=1)]
    stds = [float(s) for s in scores.std(axis=1)]
    for c, m, s in zip(grid, means, stds, strict=True):
        log.debug("C=%g: %d-fold accuracy %.4f +- %.4f", c, folds, m, s)
    tolerance = 0.01 / max(n / folds, 1.0)
    best = max(means)
    chosen = min(
        (c for c, m in zip(grid, means, strict=True) if m >= best - tolerance),
        key=lambda c: abs(math.log10(c)),
    )
    search = CSearch(
        grid=tuple(grid),
        mean=tuple(means),
        std=tuple(stds),
        folds=folds,
        chosen=chosen,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "C = 'auto': C=%g chosen by %d-fold cross-validation on the %d training images "
        "(accuracy %.1f%%; grid %s) in %.1f s (%s)",
        chosen,
        folds,
        n,
        100 * means[list(grid).index(chosen)],
        ", ".join(f"{c:g}: {100 * m:.1f}%" for c, m in zip(grid, means, strict=True)),
        search.seconds,
        solver,
    )
    return search


def search_C(
    X: np.ndarray,
    y: np.ndarray,
    params: TrainParams,
    fit: Callable[..., Any],
    *,
    grid: tuple[float, ...] = C_GRID,
) -> CSearch:
    """Choose C for ``params`` (whose ``C`` is ``"auto"``) on the training arrays ``X, y``,
    fold by fold.

    ``fit(X, y, params, quiet=True, rows=mask, warm=previous)`` fits the rows of a fold
    and returns a :class:`~pool3.training.solvers.fitted.Fitted` (with ``predict``); ``warm`` is
    the same fold's fit at the previous, smaller C (liblinear ignores it). Raises
    :class:`DataError` when a class has fewer than 2 training images (no stratified fold
    can hold it out); ``folds`` is ``train.cv_folds`` or the smallest class's count if lower.
    """
    fold = fold_of(y, params)
    folds = int(fold.max()) + 1
    started = time.perf_counter()
    order = sorted(range(len(grid)), key=lambda i: grid[i])
    scores = np.zeros((len(grid), folds))
    for f in range(folds):
        rows = fold != f
        val_idx = np.flatnonzero(~rows)
        warm = None
        for i in order:
            warm = fit(X, y, replace(params, C=grid[i]), quiet=True, rows=rows, warm=warm)
            scores[i, f] = float(np.mean(warm.predict(X[val_idx]) == y[val_idx]))
    return _chosen(tuple(grid), scores, len(y), started, "fold by fold")


@dataclass(frozen=True)
class NewtonSearch:
    """:func:`search_C_newton`'s result: the search, the mean of the folds' weights at the
    chosen C (the final fit's warm start), the passes it took, and the store of rows the
    driver held (the final fit starts from it: rows held need no shipping again)."""

    search: CSearch
    warm: np.ndarray
    passes: int
    fits: tuple[Any, ...]
    held: Any = None


def search_C_newton(
    passes: Passes,
    n_classes: int,
    folds: int,
    params: TrainParams,
    *,
    grid: tuple[float, ...] = C_GRID,
) -> NewtonSearch:
    """Choose C with every fold's classes fitted at once (module docstring) over
    ``passes``, whose rows carry their fold (:func:`fold_of`)."""
    started = time.perf_counter()
    before = passes.jobs
    cols = Columns.cross_validation(n_classes, folds)
    held = passes.new_held()
    order = sorted(range(len(grid)), key=lambda i: grid[i])
    scores = np.zeros((len(grid), folds))
    weights: dict[int, np.ndarray] = {}
    fits = []
    W, g0, previous = None, None, None
    for i in order:
        fit = fit_newton(
            passes, C=grid[i], tol=params.tol, max_iter=params.max_iter, W0=W, cols=cols,
            held=held, g0=g0, n_folds=folds,
        )  # fmt: skip
        if previous is not None:
            scores[previous] = _accuracy(fit.first)
        W, g0, previous = fit.W, fit.g0, i
        weights[i] = fit.W
        fits.append(fit)
    last, _ = passes.evaluate(W, cols, held, n_folds=folds)  # type: ignore[arg-type]
    scores[previous] = _accuracy(last)
    n = int(last.val_rows.sum()) if last.val_rows is not None else 0
    search = _chosen(
        tuple(grid), scores, n, started, f"all folds at once, {passes.jobs - before} passes"
    )
    chosen = weights[grid.index(search.chosen)].reshape(-1, folds, n_classes)
    return NewtonSearch(search, chosen.mean(axis=1), passes.jobs - before, tuple(fits), held)


def _accuracy(sums: Any) -> np.ndarray:
    """Each fold's validation accuracy from a pass's sums."""
    return np.asarray(sums.correct) / np.maximum(np.asarray(sums.val_rows), 1)
