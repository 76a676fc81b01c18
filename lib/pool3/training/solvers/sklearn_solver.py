"""The scikit-learn solvers on the driver: liblinear's ``LinearSVC`` and ``SGDClassifier``.

The tutorial's recipe, ``LinearSVC(C=1.0, loss='squared_hinge', penalty='l2',
multi_class='ovr')``, is :func:`fit_linear_svc` with the default :class:`TrainParams`;
:func:`fit_sklearn` returns it as a :class:`~pool3.training.solvers.fitted.Fitted`, the form
every solver reports in (:mod:`pool3.training.solvers.driver` runs and evaluates it).
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from pool3.config import TrainParams
from pool3.training.classifier import LinearModel
from pool3.training.solvers.c_search import numeric_C
from pool3.training.solvers.fitted import Fitted

log = logging.getLogger(__name__)

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
    solver = "sgd" if params.solver == "sgd" else "liblinear"
    estimator = _sgd(X, params, C, level) if solver == "sgd" else _liblinear(X, params, C, level)
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


def _sgd(X: np.ndarray, params: TrainParams, C: float, level: int) -> Any:
    """The unfitted ``SGDClassifier`` for ``params`` (see :func:`fit_linear_svc`), logged."""
    n_samples = len(X)
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
        "solver: SGDClassifier(loss=%r, averaged, adaptive step from eta0=%.2g, n_jobs=%d)",
        params.loss,
        eta0,
        params.n_jobs,
    )
    return estimator


def _liblinear(X: np.ndarray, params: TrainParams, C: float, level: int) -> Any:
    """The unfitted ``LinearSVC`` (in a ``OneVsRestClassifier`` when ``n_jobs != 1``) for
    ``params``, its dual chosen from the shape of ``X``, logged."""
    n_samples, n_features = X.shape
    estimator: Any
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
        "solver: liblinear LinearSVC(dual=%s, multi_class=%r, n_jobs=%d): %s",
        dual,
        params.multi_class,
        params.n_jobs,
        dual_why,
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


def fit_sklearn(
    X: np.ndarray,
    y: np.ndarray,
    params: TrainParams,
    *,
    quiet: bool = False,
    rows: np.ndarray | None = None,
    warm: Fitted | None = None,
) -> Fitted:
    """:func:`fit_linear_svc` on ``X[rows]`` as a :class:`Fitted` (``warm`` is ignored:
    scikit-learn's liblinear has no warm start)."""
    if rows is not None:
        X, y = X[rows], y[rows]
    started = time.perf_counter()
    estimator = fit_linear_svc(X, y, params, quiet=quiet)
    seconds = time.perf_counter() - started
    linear = LinearModel.from_sklearn(estimator, fingerprint="")
    n_iter = _n_iter(estimator)
    return Fitted(
        coef=linear.coef,
        intercept=linear.intercept,
        classes=linear.classes,
        estimator=_describe(estimator),
        n_iter=n_iter,
        converged=n_iter < params.max_iter,
        seconds=seconds,
        raw=estimator,
    )
