"""The active-set Newton solver reaches liblinear's LinearSVC solution (issues 23 and 35):
on the driver's array, through the distributed protocol run in memory (rows shipped to a
store of a given budget, the fallback to CG steps as passes), and with cross-validation
folds as columns."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from tests.featuredata import digits_features

from pool3.training.newton.array_passes import ArrayPasses
from pool3.training.newton.method import fit_newton
from pool3.training.newton.passes import Columns


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


@pytest.mark.heavy
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


@pytest.mark.heavy
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


@pytest.fixture(scope="module")
def real(featurizer) -> tuple[np.ndarray, ...]:
    """pool_3 features of the 300 bundled Fashion-MNIST images (10 classes) by the shipped
    weights, split 80/20 stratified."""
    from PIL import Image

    from paths import SAMPLE
    from pool3.model.featurizer import resize_299

    files = sorted(SAMPLE.glob("*.png"))
    labels = np.array([f.stem.rsplit("_", 1)[0] for f in files])
    X = np.concatenate(
        [
            featurizer.featurize_batch(
                np.stack([resize_299(np.asarray(Image.open(f).convert("RGB"))) for f in chunk])
            )
            for chunk in (files[i : i + 25] for i in range(0, len(files), 25))
        ]
    ).astype(np.float32)
    _, y = np.unique(labels, return_inverse=True)
    parts = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    return np.ascontiguousarray(parts[0]), parts[1], parts[2], parts[3]


def test_active_set_newton_equals_liblinear_on_real_pool3_features(real) -> None:
    """The active-set Newton solver on real features: within 2% of liblinear's coefficients
    at tol 1e-5, the same test predictions on >= 99.5% of images, and far fewer passes than
    the CG-per-pass design (every Newton step one pass)."""
    X_train, X_test, y_train, _ = real
    fit = fit_newton(ArrayPasses(X_train, y_train, 10), C=1.0, tol=1e-5)
    W_lib, lib = _liblinear(X_train, y_train, 1e-5)
    assert fit.converged, fit.grad_ratio
    assert _rel(fit.W, W_lib) <= 0.02
    ours = np.argmax(X_test @ fit.W[:-1] + fit.W[-1], axis=1)
    assert np.mean(ours == lib.predict(X_test)) >= 0.995
    assert fit.passes == fit.newton_iters + 1 and fit.cg_passes == 0
    assert fit.cg_iters > fit.newton_iters  # the CG steps ran on the held rows


@pytest.mark.parametrize(("held_mb", "ship_mb"), [(0.0, 0.0), (1.8, 0.6), (64.0, 0.5)])
def test_the_distributed_protocol_gives_the_same_model(real, held_mb, ship_mb) -> None:
    """The rows copied to a store of ``held_mb`` at ``ship_mb`` per pass, as Spark ships them:
    none (every CG step a pass), some (the early steps as passes until the rows active near
    the optimum are all held, then on the driver), all (after a few passes). Same model."""
    X_train, _, y_train, _ = real
    full = fit_newton(ArrayPasses(X_train, y_train, 10), C=1.0, tol=1e-5)
    shipped = ArrayPasses(X_train, y_train, 10, held_mb=held_mb, ship_mb=ship_mb)
    fit = fit_newton(shipped, C=1.0, tol=1e-5)
    assert fit.converged
    assert _rel(fit.W, full.W) <= 0.005
    assert fit.held_peak_rows <= held_mb * 2**20 / (4 * 2048)
    if held_mb == 0:
        assert fit.fallback_steps == fit.newton_iters and fit.cg_passes == fit.cg_iters
    elif held_mb < 10:
        assert 0 < fit.fallback_steps < fit.newton_iters and fit.cg_passes < fit.cg_iters
    else:
        assert fit.shipped_bytes >= X_train.nbytes and fit.largest_pass_bytes <= ship_mb * 2**20
        assert fit.passes <= full.passes + 4


@pytest.mark.heavy
def test_fold_columns_equal_fitting_each_fold(split: tuple[np.ndarray, ...]) -> None:
    """Cross-validation fits every fold's classes as columns of one W over one pass per
    step: each fold's columns equal a fit of that fold's rows alone."""
    X_train, _, y_train, _ = split
    fold = (np.arange(len(y_train)) * 7919) % 3
    passes = ArrayPasses(X_train, y_train, 10, fold=fold)
    together = fit_newton(passes, C=0.5, tol=1e-6, cols=Columns.cross_validation(10, 3))
    for f in range(3):
        alone = fit_newton(ArrayPasses(X_train, y_train, 10, rows=fold != f), C=0.5, tol=1e-6)
        W = together.W[:, f * 10 : (f + 1) * 10]
        assert _rel(W, alone.W) <= 0.002
