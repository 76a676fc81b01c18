"""The float32 Newton solver reaches liblinear's LinearSVC solution (issue 23, point 4)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from tests.featuredata import digits_features

from pool3.training.newton import fit_newton
from pool3.training.passes import ArrayPasses


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, ...]:
    X, y = digits_features(n_classes=10, per_class=150)
    _, codes = np.unique(y, return_inverse=True)
    X_train, X_test, y_train, y_test = train_test_split(X, codes, test_size=0.2, random_state=42)
    return np.ascontiguousarray(X_train), X_test, y_train, y_test


def _rel(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


def _liblinear(X: np.ndarray, y: np.ndarray, tol: float) -> tuple[np.ndarray, LinearSVC]:
    lib = LinearSVC(C=1.0, loss="squared_hinge", penalty="l2", dual=False, tol=tol).fit(X, y)
    return np.vstack([lib.coef_.T, lib.intercept_[None]]), lib


def test_newton_equals_liblinear(split: tuple[np.ndarray, ...]) -> None:
    """At tol 1e-5 the two solutions are within 2%; predictions agree on >= 99.5%."""
    X_train, X_test, y_train, y_test = split
    fit = fit_newton(ArrayPasses(X_train, y_train, 10), C=1.0, tol=1e-5)
    W_lib, lib = _liblinear(X_train, y_train, 1e-5)
    assert fit.converged, fit.grad_ratio
    assert _rel(fit.W, W_lib) <= 0.02
    ours = np.argmax(X_test @ fit.W[:-1] + fit.W[-1], axis=1)
    theirs = lib.predict(X_test)
    assert np.mean(ours == theirs) >= 0.995
    assert abs(np.mean(ours == y_test) - np.mean(theirs == y_test)) <= 0.003


def test_newton_stops_as_close_as_liblinear(split: tuple[np.ndarray, ...]) -> None:
    """At tol 1e-4 liblinear itself stops ~4% from the optimum (measured: 3.8%, Newton
    2.3%), so the issue's "2% of liblinear" is within the stopping rule's own slack there:
    Newton must be at least as close to the optimum (a fit at tol 1e-9) as liblinear."""
    X_train, _, y_train, _ = split
    optimum = fit_newton(ArrayPasses(X_train, y_train, 10), C=1.0, tol=1e-9).W
    fit = fit_newton(ArrayPasses(X_train, y_train, 10), C=1.0, tol=1e-4)
    W_lib, _ = _liblinear(X_train, y_train, 1e-4)
    assert fit.converged
    assert _rel(fit.W, optimum) <= _rel(W_lib, optimum)


def test_rows_mask_is_a_fold(split: tuple[np.ndarray, ...]) -> None:
    """A row mask fits exactly the rows it keeps (what C search's folds rely on)."""
    X_train, _, y_train, _ = split
    keep = np.arange(len(X_train)) % 3 != 0
    masked = fit_newton(ArrayPasses(X_train, y_train, 10, rows=keep), C=0.5, tol=1e-4)
    copied = fit_newton(
        ArrayPasses(np.ascontiguousarray(X_train[keep]), y_train[keep], 10), C=0.5, tol=1e-4
    )
    np.testing.assert_allclose(masked.W, copied.W, rtol=1e-6, atol=1e-8)
    assert masked.passes == copied.passes


def test_warm_start_converges_in_fewer_passes(split: tuple[np.ndarray, ...]) -> None:
    X_train, _, y_train, _ = split
    passes = ArrayPasses(X_train, y_train, 10)
    cold = fit_newton(passes, C=1.0, tol=1e-4)
    warm = fit_newton(passes, C=1.0, tol=1e-4, W0=cold.W)
    assert warm.converged
    assert warm.passes < cold.passes / 2
    assert np.linalg.norm(warm.W - cold.W) <= 0.02 * np.linalg.norm(cold.W)


def test_array_passes_refuses_a_copying_input() -> None:
    with pytest.raises(ValueError, match="C-contiguous float32"):
        ArrayPasses(np.zeros((4, 3)), np.zeros(4, dtype=int), 2)


def _objective(W: np.ndarray, X: np.ndarray, y: np.ndarray, C: float) -> float:
    """liblinear's L2R_L2LOSS_SVC objective summed over the one-vs-rest classes, float64."""
    Z = X.astype(np.float64) @ W[:-1] + W[-1]
    Y = np.where(y[:, None] == np.arange(W.shape[1])[None, :], 1.0, -1.0)
    return float(0.5 * (W * W).sum() + C * (np.maximum(0.0, 1.0 - Y * Z) ** 2).sum())


def test_wide_tables_need_small_steps_and_still_converge() -> None:
    """Fewer rows than features: the first Newton steps are accepted only at t ~ 2^-10 or
    less; a line search that stops at 1/512 gave up 4% above liblinear's objective."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 2048)).astype(np.float32)
    y = rng.integers(0, 3, 150)
    fit = fit_newton(ArrayPasses(X, y, 3), C=1.0, tol=1e-4)
    assert fit.converged, fit.grad_ratio
    W_lib, _ = _liblinear(X, y, 1e-6)
    assert _objective(fit.W, X, y, 1.0) <= _objective(W_lib, X, y, 1.0) * 1.001
