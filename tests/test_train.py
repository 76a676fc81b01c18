"""Training on the driver: data preparation, split, fit, metrics (real scikit-learn fits)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from featuredata import FINGERPRINT, digits_features, digits_table, feature_table
from pool3 import train as train_mod
from pool3.errors import ConfigError, DataError, InputError
from pool3.train import (
    TrainParams,
    fit_linear_svc,
    metrics,
    prepare_training_data,
    split,
    train_and_evaluate,
)


@pytest.fixture(scope="module")
def digits() -> train_mod.PreparedData:
    return prepare_training_data(digits_table(10, 60))


@pytest.fixture(scope="module")
def result(digits: train_mod.PreparedData) -> train_mod.TrainResult:
    return train_and_evaluate(digits, TrainParams())


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


def test_no_stratify_reproduces_the_tutorial_split():
    data = prepare_training_data(digits_table(5, 30))
    parts = split(data, TrainParams(stratify=False))
    _, X_test, _, y_test = train_test_split(data.X, data.y, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(parts.X_test, X_test)
    np.testing.assert_array_equal(parts.y_test, y_test)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"test_size": 1.5}, ["test_size", "1.5"]),
        ({"test_size": "0.2"}, ["test_size", "'0.2'"]),
        ({"C": 0.0}, ["C=0.0", "> 0"]),
        ({"loss": "log"}, ["loss='log'", "squared_hinge"]),
        ({"dual": "yes"}, ["dual='yes'", "auto"]),
        ({"dual": 1}, ["dual=1"]),
        ({"solver": "saga"}, ["solver='saga'", "liblinear", "sgd"]),
        ({"dtype": "float16"}, ["dtype='float16'", "float32"]),
        ({"n_jobs": 0}, ["n_jobs=0", "-1"]),
        ({"seed": -1}, ["seed=-1"]),
        ({"penalty": "l1", "loss": "hinge"}, ["penalty='l1'", "squared_hinge"]),
        ({"penalty": "l1", "dual": True}, ["dual=False"]),
        ({"multi_class": "crammer_singer", "solver": "sgd"}, ["crammer_singer", "sgd"]),
    ],
)
def test_params_reject_bad_values_naming_field_and_value(kwargs, words):
    with pytest.raises(ConfigError) as err:
        TrainParams(**kwargs)
    for word in words:
        assert word in str(err.value)


# --- preparing the feature table ----------------------------------------------------------


def test_prepare_stacks_float32_contiguous(digits):
    assert digits.X.shape == (600, 2048)
    assert digits.X.dtype == np.float32 and digits.X.flags.c_contiguous
    assert digits.y.dtype.kind == "U" and len(digits.paths) == 600
    assert digits.fingerprint == FINGERPRINT
    assert digits.classes == sorted(digits.classes) and len(digits.classes) == 10


def test_error_and_unlabelled_rows_are_skipped_and_counted(caplog):
    df = digits_table(3, 10)
    df.loc[0, "error"] = "cannot decode"
    df.loc[0, "features"] = None
    df.loc[1, "label"] = None
    df.loc[2, "label"] = np.nan
    df.loc[3, "label"] = ""
    kept_paths = set(df["path"][4:])
    with caplog.at_level(logging.INFO, logger="pool3"):
        data = prepare_training_data(df)
    assert data.counts == {
        "rows_total": 30,
        "rows_error": 1,
        "rows_unlabelled": 3,
        "rows_used": 26,
    }
    assert set(data.paths) == kept_paths and data.X.shape == (26, 2048)
    assert "3 rows without a label" in caplog.text


def test_mixed_fingerprints_refused_with_counts():
    X, y = digits_features(2, 10)
    df = pd.concat([feature_table(X[:15], y[:15]), feature_table(X[15:], y[15:], model="other:9")])
    with pytest.raises(DataError) as err:
        prepare_training_data(df)
    msg = str(err.value)
    assert f"'{FINGERPRINT}': 15 rows" in msg and "'other:9': 5 rows" in msg
    assert "Re-featurize" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_refused_naming_rows(bad):
    df = digits_table(2, 10)
    for i in (3, 7):
        row = df.at[i, "features"].copy()
        row[5] = bad
        df.at[i, "features"] = row
    with pytest.raises(DataError) as err:
        prepare_training_data(df)
    assert "2 rows have NaN or infinite" in str(err.value)
    assert df.at[3, "path"] in str(err.value)


def test_single_class_refused_naming_it():
    X, y = digits_features(1, 12)
    with pytest.raises(DataError, match=r"only 'zero' \(12 images\)"):
        prepare_training_data(feature_table(X, y))


def test_missing_columns_and_wrong_lengths():
    with pytest.raises(InputError, match="lacks columns \\['model', 'error'\\]"):
        prepare_training_data(digits_table(2, 5).drop(columns=["model", "error"]))
    df = digits_table(2, 5)
    df.at[4, "features"] = df.at[4, "features"][:100]
    with pytest.raises(DataError, match="length \\[100\\], expected 2048"):
        prepare_training_data(df)


# --- split ----------------------------------------------------------------------------------


def test_stratified_split_keeps_paths_and_proportions(digits):
    parts = split(digits, TrainParams())
    assert len(parts.y_test) == 120 and len(parts.y_train) == 480
    assert set(np.unique(parts.y_test, return_counts=True)[1]) == {12}
    row_of = {p: i for i, p in enumerate(digits.paths)}
    for path, x, label in zip(parts.paths_test, parts.X_test, parts.y_test, strict=True):
        np.testing.assert_array_equal(digits.X[row_of[path]], x)
        assert digits.y[row_of[path]] == label
    assert not set(parts.paths_test) & set(parts.paths_train)


def test_one_image_class_with_stratify_names_class_and_fixes():
    X, y = digits_features(3, 10)
    X, y = np.vstack([X, X[:1]]), np.append(y, "lonely_class")
    data = prepare_training_data(feature_table(X, y))
    with pytest.raises(DataError) as err:
        split(data, TrainParams())
    assert "'lonely_class'" in str(err.value) and "--no-stratify" in str(err.value)
    assert len(split(data, TrainParams(stratify=False)).y_train) == 24


# --- fitting ------------------------------------------------------------------------------


def test_train_and_evaluate_beats_chance(result, digits):
    assert result.metrics["accuracy"] > 0.9  # chance is 0.1
    assert result.labels == tuple(digits.classes) == result.classifier.classes
    assert result.scores_test.shape == (120, 10) and result.paths_test.shape == (120,)
    assert isinstance(result.estimator, LinearSVC)
    assert result.solver == "LinearSVC(dual=True, multi_class='ovr')"  # 480 < 2048 features
    X_test = digits.X[[list(digits.paths).index(p) for p in result.paths_test]]
    np.testing.assert_array_equal(result.y_pred, result.estimator.predict(X_test))
    meta = result.classifier.meta
    assert meta["n_train"] == 480 and meta["split"] == {
        "test_size": 0.2,
        "stratify": True,
        "seed": 42,
    }
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


def test_auto_picks_sgd_beyond_budget(monkeypatch, caplog):
    X, y = digits_features(4, 30)
    monkeypatch.setattr(train_mod, "LIBLINEAR_AUTO_MAX_VALUES", 1000)
    with caplog.at_level(logging.INFO, logger="pool3"):
        est = fit_linear_svc(X, y, TrainParams(max_iter=30))
    assert isinstance(est, SGDClassifier) and "beyond the driver or very large" in caplog.text
    assert (est.predict(X) == y).mean() > 0.8


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
def test_parallel_one_vs_rest_equals_serial():
    data = prepare_training_data(digits_table(4, 30))
    # A tight tol: liblinear's joint one-vs-rest and separate binary fits stop at
    # slightly different points otherwise (2e-2 apart at tol=1e-4).
    serial = train_and_evaluate(data, TrainParams(dual=False, tol=1e-6))
    parallel = train_and_evaluate(data, TrainParams(dual=False, tol=1e-6, n_jobs=2))
    assert isinstance(parallel.estimator, OneVsRestClassifier)
    assert parallel.solver.startswith("OneVsRestClassifier(LinearSVC(dual=False")
    np.testing.assert_array_equal(parallel.y_pred, serial.y_pred)
    np.testing.assert_allclose(parallel.scores_test, serial.scores_test, atol=1e-3)


def test_binary_problem():
    data = prepare_training_data(digits_table(2, 40))
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
