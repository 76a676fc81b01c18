"""Fit the linear SVM on the driver (liblinear or SGD) and evaluate it on the held-out split.

The tutorial's recipe, ``LinearSVC(C=1.0, loss='squared_hinge', penalty='l2',
multi_class='ovr')`` on an 80/20 split, is the default. The split itself is made before,
on Spark, the same for every solver (:mod:`pool3.training.split`)::

    data = prepare(spark.read.parquet(path), config.train)
    result = train_and_evaluate(data, config.train)
    save_model(result.classifier, model_dir); write_report(result, model_dir)
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, replace
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from pool3.config import TrainParams
from pool3.model.inception2015 import FEATURE_DIM
from pool3.training.c_search import numeric_C, search_C
from pool3.training.classifier import LinearModel
from pool3.training.data import collect_split
from pool3.training.quality import suspected_label_errors
from pool3.training.result import TrainResult, evaluated
from pool3.training.rules import TrainingTable

log = logging.getLogger(__name__)

# liblinear copies X to float64 and then to its own (index, value) nodes: ~24 bytes per
# value. Above this many values (~122k images of 2048 features, ~6 GB) "auto" picks SGD.
LIBLINEAR_AUTO_MAX_VALUES = 250_000_000
# SGD's tol is on the epoch loss, not liblinear's gradient norm; below 1e-3 the adaptive
# schedule only shrinks its step for many more epochs without changing the predictions.
SGD_MIN_TOL = 1e-3


def _resolve_dual(params: TrainParams, n_samples: int, n_features: int) -> tuple[bool, str]:
    """Mirror scikit-learn's ``dual='auto'`` so the log states what actually ran."""
    if params.dual != "auto":
        return bool(params.dual), f"dual={params.dual} as configured"
    primal_ok = not (params.penalty == "l2" and params.loss == "hinge")
    dual_ok = params.penalty == "l2"
    if n_samples < n_features and dual_ok:
        return True, f"n_samples={n_samples} < n_features={n_features}: dual is smaller"
    if primal_ok:
        return False, (
            f"n_samples={n_samples} >= n_features={n_features}: primal (dual=False) is faster"
        )
    return True, f"loss={params.loss!r} with penalty='l2' is only solved in the dual"


def _choose_solver(params: TrainParams, n_samples: int, n_features: int) -> tuple[str, str]:
    if params.solver != "auto":
        return params.solver, f"solver={params.solver!r} as configured"
    values = n_samples * n_features
    if values > LIBLINEAR_AUTO_MAX_VALUES and params.multi_class == "ovr":
        return "sgd", (
            f"{n_samples}x{n_features} values (> {LIBLINEAR_AUTO_MAX_VALUES}, ~24 bytes each "
            "in liblinear) is beyond the driver or very large; SGD fits the float32 array "
            "without copies"
        )
    return "liblinear", f"{n_samples}x{n_features} fits liblinear on the driver"


def sgd_step(X: np.ndarray) -> float:
    """Initial SGD step ``1 / mean(||x||^2)``: the (squared) hinge loss's curvature scale.

    scikit-learn's default "optimal" schedule starts at ``1 / (alpha * t0)``, huge for the
    small ``alpha = 1 / (C * n_samples)`` that matches ``LinearSVC(C)``: on train_bench's
    10k x 2048 features it ran out of its 1000 epochs (2.9 points below liblinear; on
    Fashion-MNIST 4.5 points), where this step with averaging and the "adaptive" schedule
    stops after 41 epochs (+2.75 points; Fashion-MNIST -0.25 points, 59 epochs):
    bench/RESULTS.md, training runs of 2026-11-24 and 2026-11-30.
    """
    sample = X[: min(len(X), 10_000)].astype(np.float64)
    mean_sq = float(np.mean(np.einsum("ij,ij->i", sample, sample))) if len(sample) else 1.0
    return 1.0 / max(mean_sq, 1e-12)


def fit_linear_svc(
    X: np.ndarray, y: np.ndarray, params: TrainParams, *, quiet: bool = False
) -> Any:
    """Fit the linear SVM (``quiet``: its log lines at DEBUG, for the C search's fits).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float
        Cast to ``params.dtype`` (liblinear still copies to float64 internally).
    y : ndarray of shape (n_samples,), str
    params : TrainParams

    Returns
    -------
    estimator
        A fitted ``LinearSVC``, ``OneVsRestClassifier(LinearSVC)`` when ``n_jobs != 1``,
        or ``SGDClassifier`` (hinge-type loss, ``alpha = 1 / (C * n_samples)``, averaged,
        adaptive step from :func:`sgd_step`, ``tol >= SGD_MIN_TOL``).
    """
    C = numeric_C(params)
    level = logging.DEBUG if quiet else logging.INFO
    X = np.ascontiguousarray(X, dtype=np.dtype(params.dtype))
    n_samples, n_features = X.shape
    solver, why = _choose_solver(params, n_samples, n_features)
    estimator: Any
    if solver == "sgd":
        eta0 = sgd_step(X)
        estimator = SGDClassifier(
            loss=params.loss,
            penalty=params.penalty,
            alpha=1.0 / (C * n_samples),
            learning_rate="adaptive",
            eta0=eta0,
            average=True,
            max_iter=params.max_iter,
            tol=max(params.tol, SGD_MIN_TOL),
            random_state=params.seed,
            n_jobs=params.n_jobs,
        )
        log.log(
            level,
            "solver: SGDClassifier(loss=%r, averaged, adaptive step from eta0=%.2g, n_jobs=%d) "
            "because %s",
            params.loss,
            eta0,
            params.n_jobs,
            why,
        )
    else:
        dual, dual_why = _resolve_dual(params, n_samples, n_features)
        estimator = LinearSVC(
            C=C,
            loss=params.loss,
            penalty=params.penalty,
            multi_class=params.multi_class,
            dual=dual,
            max_iter=params.max_iter,
            tol=params.tol,
            random_state=params.seed,
        )
        if params.n_jobs != 1:
            estimator = OneVsRestClassifier(estimator, n_jobs=params.n_jobs)
        log.log(
            level,
            "solver: liblinear LinearSVC(dual=%s, multi_class=%r, n_jobs=%d) because %s; %s",
            dual,
            params.multi_class,
            params.n_jobs,
            why,
            dual_why,
        )
    with warnings.catch_warnings():
        # Reported once through logging (and in meta["converged"]) instead of on stderr.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    n_iter = _n_iter(estimator)
    if n_iter >= params.max_iter:
        log.log(
            level if quiet else logging.WARNING,
            "%s stopped at max_iter=%d before converging; the model may be sub-optimal: "
            "raise max_iter or lower C%s",
            type(estimator).__name__,
            params.max_iter,
            "" if solver == "sgd" else ", or use dual=False when n_samples > n_features",
        )
    return estimator


def _describe(estimator: Any) -> str:
    """Short name of the fitted estimator with what matters, e.g. ``LinearSVC(dual=False)``."""
    if isinstance(estimator, OneVsRestClassifier):
        return f"OneVsRestClassifier({_describe(estimator.estimator)}, n_jobs={estimator.n_jobs})"
    if isinstance(estimator, LinearSVC):
        return f"LinearSVC(dual={estimator.dual}, multi_class={estimator.multi_class!r})"
    return f"{type(estimator).__name__}(loss={estimator.loss!r})"


def _n_iter(estimator: Any) -> int:
    """Largest iteration count over the fitted (one-vs-rest) problems."""
    if hasattr(estimator, "estimators_"):
        return max(_n_iter(e) for e in estimator.estimators_)
    return int(np.max(getattr(estimator, "n_iter_", 0)))


def train_and_evaluate(
    data: TrainingTable, params: TrainParams, *, n_features: int = FEATURE_DIM
) -> TrainResult:
    """Collect the split rows, fit on the training part and evaluate on the test part.

    Returns
    -------
    TrainResult
        The persisted-form classifier (with ``meta``: sizes, split, seed, params, solver),
        the raw estimator, ``metrics(...)`` over every class, and test predictions.
    """
    parts = collect_split(data, n_features)
    search = None
    if params.C == "auto":
        # The folds (4/5 of the rows) run the solver that the full training set gets.
        solver, _ = _choose_solver(params, *parts.X_train.shape)
        search = search_C(
            parts.X_train,
            parts.y_train,
            replace(params, solver=solver),
            lambda X, y, p: fit_linear_svc(X, y, p, quiet=True),
        )
        params = replace(params, C=search.chosen)
    started = time.perf_counter()
    estimator = fit_linear_svc(parts.X_train, parts.y_train, params)
    fit_seconds = time.perf_counter() - started
    n_iter = _n_iter(estimator)
    meta = {
        "counts": dict(data.counts),
        "feature_precision": data.precision,
        "n_train": len(parts.y_train),
        "n_test": len(parts.y_test),
        "n_features": n_features,
        "split": dict(data.split),
        "params": asdict(params),
        "estimator": _describe(estimator),
        "n_iter": n_iter,
        "converged": n_iter < params.max_iter,
        "fit_seconds": round(fit_seconds, 3),
    }
    if search is not None:
        meta["C_search"] = search.as_dict()
    model = LinearModel.from_sklearn(estimator, fingerprint=data.fingerprint, meta=meta)
    scores = model.decision_function(parts.X_test)
    return evaluated(
        model,
        estimator,
        labels=data.classes,
        y_test=parts.y_test,
        y_pred=np.asarray(model.classes)[np.argmax(scores, axis=1)],
        paths_test=parts.paths_test,
        scores_test=scores,
        fit_seconds=fit_seconds,
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
    )
