"""Training on the driver: data preparation, split, fit, metrics (real scikit-learn fits)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from featuredata import digits_features, digits_table, table
from pool3.config import TrainParams
from pool3.errors import ConfigError, DataError
from pool3.training.evaluation.metrics import metrics
from pool3.training.evaluation.result import TrainResult
from pool3.training.solvers import choose
from pool3.training.solvers import sklearn_solver as train_mod
from pool3.training.solvers.driver import train_and_evaluate
from pool3.training.solvers.sklearn_solver import fit_linear_svc
from pool3.training.table.rules import TrainingTable, prepare


@pytest.fixture(scope="module")
def digits(spark) -> TrainingTable:
    return prepare(table(spark, digits_table(10, 60)), TrainParams())


@pytest.fixture(scope="module")
def result(digits: TrainingTable) -> TrainResult:
    return train_and_evaluate(digits, TrainParams(solver="liblinear"))


# --- parameters -------------------------------------------------------------------------


def test_defaults_are_the_tutorials_linearsvc_and_split():
    p = TrainParams()
    assert (p.C, p.loss, p.penalty, p.multi_class) == (1.0, "squared_hinge", "l2", "ovr")
    assert (p.test_size, p.seed) == (0.2, 42)
    X, y = digits_features(3, 20)
    fitted = fit_linear_svc(X, y, p).get_params()
    tutorial = LinearSVC(C=1.0, loss="squared_hinge", penalty="l2", multi_class="ovr").get_params()
    for key in ("C", "loss", "penalty", "multi_class", "tol", "max_iter", "fit_intercept"):
        assert fitted[key] == tutorial[key], key


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"test_size": 1.5}, ["train.test_size = 1.5", "< 1"]),
        ({"test_size": "0.2"}, ["train.test_size = '0.2'", "a number"]),
        ({"C": 0.0}, ["train.C = 0.0", "> 0"]),
        ({"loss": "log"}, ["train.loss = 'log'", "squared_hinge"]),
        ({"dual": "yes"}, ["train.dual = 'yes'", "auto"]),
        ({"dual": 1}, ["train.dual = 1"]),
        ({"solver": "saga"}, ["train.solver = 'saga'", "liblinear", "sgd"]),
        ({"split": "random"}, ["train.split = 'random'", "content", "sklearn"]),
        ({"dtype": "float16"}, ["train.dtype = 'float16'", "float32"]),
        ({"n_jobs": 0}, ["train.n_jobs = 0", "-1"]),
        ({"seed": -1}, ["train.seed = -1"]),
        # scikit-learn's own refusals, quoted
        (
            {"penalty": "l1", "loss": "hinge"},
            ["train.penalty = 'l1'", "loss='hinge'", "not supported"],
        ),
        ({"penalty": "l1", "dual": True}, ["train.dual = True", "dual=True", "not supported"]),
        ({"multi_class": "crammer_singer", "solver": "sgd"}, ["crammer_singer", "sgd"]),
    ],
)
def test_params_reject_bad_values_naming_field_and_value(kwargs, words):
    with pytest.raises(ConfigError) as err:
        TrainParams(**kwargs)
    for word in words:
        assert word in str(err.value)


# --- fitting ------------------------------------------------------------------------------


def test_train_and_evaluate_beats_chance(result, digits):
    assert result.metrics["accuracy"] > 0.9  # chance is 0.1
    assert result.labels == tuple(digits.classes) == result.classifier.classes
    assert result.scores_test.shape == (120, 10) and result.paths_test.shape == (120,)
    assert isinstance(result.estimator, LinearSVC)
    assert result.solver == "LinearSVC(dual=True, multi_class='ovr')"  # 480 < 2048 features
    by_path = digits_table(10, 60).set_index("path")["features"]
    X_test = np.stack([by_path[p] for p in result.paths_test])
    np.testing.assert_array_equal(result.y_pred, result.estimator.predict(X_test))
    meta = result.classifier.meta
    assert meta["n_train"] == 480 and meta["split"]["method"] == "content"
    assert (meta["split"]["test_size"], meta["split"]["stratify"], meta["split"]["seed"]) == (
        0.2,
        True,
        42,
    )
    json.dumps(meta)


def test_solver_choice_is_logged(caplog):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "a", "b")
    with caplog.at_level(logging.INFO, logger="pool3"):
        est = fit_linear_svc(X, y, TrainParams())
    assert est.dual is False
    assert "dual=False" in caplog.text and "n_samples=300 >= n_features=20" in caplog.text
    caplog.clear()
    X_wide = rng.normal(size=(30, 100)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="pool3"):
        est = fit_linear_svc(X_wide, np.where(X_wide[:, 0] > 0, "a", "b"), TrainParams())
    assert est.dual is True and "n_samples=30 < n_features=100" in caplog.text


def test_auto_picks_sgd_for_hinge_beyond_liblinears_budget(monkeypatch):
    monkeypatch.setattr(choose, "LIBLINEAR_MAX_VALUES", 1000)
    choice = choose.choose_solver(
        TrainParams(loss="hinge"), n_train=120, table_mb=1.0, max_collect_mb=10, free_mb=1e4
    )
    assert choice.name == "sgd" and "too large for liblinear's float64 copies" in choice.why
    X, y = digits_features(4, 30)
    est = fit_linear_svc(X, y, TrainParams(solver="sgd", max_iter=30))
    assert isinstance(est, SGDClassifier) and (est.predict(X) == y).mean() > 0.8


def test_sgd_solver_learns(digits):
    res = train_and_evaluate(digits, TrainParams(solver="sgd", max_iter=30))
    assert res.solver == "SGDClassifier(loss='squared_hinge')" and res.metrics["accuracy"] > 0.8


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge"])
def test_sgd_converges_and_matches_liblinear(digits, loss):
    # scikit-learn's default step schedule with alpha = 1 / (C n) ran out of max_iter on
    # pool_3-like data; the averaged, adaptive SGD must stop on its own and agree with
    # liblinear on most test images.
    params = {"loss": loss, "max_iter": 1000}
    sgd = train_and_evaluate(digits, TrainParams(solver="sgd", **params))
    lib = train_and_evaluate(digits, TrainParams(solver="liblinear", **params))
    assert sgd.classifier.meta["converged"], sgd.classifier.meta["n_iter"]
    assert sgd.classifier.meta["n_iter"] < 200
    assert sgd.metrics["accuracy"] >= lib.metrics["accuracy"] - 0.03
    assert np.mean(sgd.y_pred == lib.y_pred) >= 0.9


def test_sgd_step_is_inverse_mean_squared_norm():
    X = np.array([[3.0, 4.0], [0.0, 5.0], [1.0, 0.0]], dtype=np.float32)  # |x|^2: 25, 25, 1
    assert train_mod.sgd_step(X) == pytest.approx(3 / 51)


@pytest.mark.slow  # starts joblib worker processes
def test_parallel_one_vs_rest_equals_serial(spark):
    data = prepare(table(spark, digits_table(4, 30)), TrainParams())
    # A tight tol: liblinear's joint one-vs-rest and separate binary fits stop at
    # slightly different points otherwise (2e-2 apart at tol=1e-4).
    lib = {"solver": "liblinear", "dual": False, "tol": 1e-6}
    serial = train_and_evaluate(data, TrainParams(**lib))
    parallel = train_and_evaluate(data, TrainParams(**lib, n_jobs=2))
    assert isinstance(parallel.estimator, OneVsRestClassifier)
    assert parallel.solver.startswith("OneVsRestClassifier(LinearSVC(dual=False")
    np.testing.assert_array_equal(parallel.y_pred, serial.y_pred)
    np.testing.assert_allclose(parallel.scores_test, serial.scores_test, atol=1e-3)


def test_binary_problem(spark):
    data = prepare(table(spark, digits_table(2, 40)), TrainParams())
    res = train_and_evaluate(data, TrainParams())
    assert res.classifier.coef.shape == (1, 2048) and res.scores_test.shape == (16, 2)
    assert res.metrics["accuracy"] > 0.9


# --- metrics ------------------------------------------------------------------------------


def test_metrics_by_hand():
    y_true = ["a", "a", "a", "b", "b", "c", "c", "c"]
    y_pred = ["a", "b", "b", "b", "b", "c", "a", "c"]
    m = metrics(y_true, y_pred, ["c", "b", "a"])
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["labels"] == ["c", "b", "a"]
    assert m["confusion_matrix"] == [[2, 0, 1], [0, 2, 0], [0, 2, 1]]
    assert m["most_confused"][0] == {"true": "a", "predicted": "b", "count": 2}
    assert {(p["true"], p["predicted"]) for p in m["most_confused"]} == {("a", "b"), ("c", "a")}
    assert m["per_class"]["b"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert list(m["per_class"]) == ["c", "b", "a"]
    assert m["recall_macro"] == pytest.approx((2 / 3 + 1 + 1 / 3) / 3)
    assert m["f1_macro"] == pytest.approx((0.8 + 2 / 3 + 0.4) / 3)
    assert m["f1_weighted"] == pytest.approx((0.8 * 3 + 2 / 3 * 2 + 0.4 * 3) / 8)
    json.dumps(m)


def test_metrics_refuse_unlisted_labels():
    with pytest.raises(DataError, match="'z'"):
        metrics(["a", "z"], ["a", "a"], ["a"])
