"""``train.C = "auto"``: the SVM's C chosen by stratified cross-validation on the training split.

Each C of ``C_GRID`` (a decade apart around the tutorial's 1.0) is fitted ``train.cv_folds``
times by the same solver as the final fit (:mod:`pool3.training.driver`) on
``StratifiedKFold(shuffle=True, random_state=seed)`` folds of the training images only, the
Newton solver starting each fold's fit from its fit at the previous, smaller C; the test
split is never seen, so the reported test accuracy stays an honest estimate. The C with
the best mean fold accuracy wins; ties (within a hundredth of a fold's image) go to the
tied C nearest the tutorial's 1.0 on a log scale. The cost is ``len(C_GRID) * folds`` fits
(25 at the defaults) on ``(folds - 1) / folds`` of the training set: opt-in. liblinear
copies each fold's rows (~0.8x the training array); Newton reads them through a row mask.
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

log = logging.getLogger(__name__)

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def numeric_C(params: TrainParams) -> float:
    """``params.C`` as the number a solver needs (``"auto"`` is resolved before any fit)."""
    if isinstance(params.C, str):
        raise ValueError(
            f"train.C = {params.C!r} reached a solver: it is resolved by train_and_evaluate "
            "(pool3.training.c_search) before fitting; pass a number"
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


def search_C(
    X: np.ndarray,
    y: np.ndarray,
    params: TrainParams,
    fit: Callable[..., Any],
    *,
    grid: tuple[float, ...] = C_GRID,
) -> CSearch:
    """Choose C for ``params`` (whose ``C`` is ``"auto"``) on the training arrays ``X, y``.

    ``fit(X, y, params, quiet=True, rows=mask, warm=previous)`` fits the rows of a fold
    and returns a :class:`~pool3.training.solvers.Fitted` (with ``predict``); ``warm`` is
    the same fold's fit at the previous, smaller C, which the Newton solver starts from
    (liblinear ignores it). Raises :class:`DataError` when a class has fewer than 2
    training images (no stratified fold can hold it out); ``folds`` is ``train.cv_folds``
    or the smallest class's count if lower.
    """
    _, per_class = np.unique(y, return_counts=True)
    smallest = int(per_class.min()) if len(per_class) else 0
    if smallest < 2:
        raise DataError(
            f"train.C = 'auto' needs at least 2 training images per class for cross-validation; "
            f"the smallest class has {smallest}: add images or set a number for train.C"
        )
    folds = min(params.cv_folds, smallest)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    parts = list(splitter.split(np.zeros(len(y)), y))
    started = time.perf_counter()
    order = sorted(range(len(grid)), key=lambda i: grid[i])
    scores = np.zeros((len(grid), folds))
    for f, (_, val_idx) in enumerate(parts):
        rows = np.ones(len(y), dtype=bool)
        rows[val_idx] = False
        warm = None
        for i in order:
            warm = fit(X, y, replace(params, C=grid[i]), quiet=True, rows=rows, warm=warm)
            scores[i, f] = float(np.mean(warm.predict(X[val_idx]) == y[val_idx]))
    means = [float(m) for m in scores.mean(axis=1)]
    stds = [float(s) for s in scores.std(axis=1)]
    for c, m, s in zip(grid, means, stds, strict=True):
        log.debug("C=%g: %d-fold accuracy %.4f +- %.4f", c, folds, m, s)
    tolerance = 0.01 / max(len(y) / folds, 1.0)
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
        "(accuracy %.1f%%; grid %s) in %.1f s",
        chosen,
        folds,
        len(y),
        100 * means[list(grid).index(chosen)],
        ", ".join(f"{c:g}: {100 * m:.1f}%" for c, m in zip(grid, means, strict=True)),
        search.seconds,
    )
    return search
