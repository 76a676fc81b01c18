"""Classifier persistence without pickle: round trips, and tampered files that must fail."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from featuredata import FINGERPRINT, digits_features
from pool3.errors import ConfigError, ModelError
from pool3.training.classifier import JSON_NAME, NPZ_NAME, LinearModel, load_model, save_model


@pytest.fixture(scope="module")
def multi() -> tuple[LinearSVC, np.ndarray]:
    X, y = digits_features(10, 40)
    return LinearSVC(dual=False).fit(X[::2], y[::2]), X[1::2]


@pytest.fixture(scope="module")
def binary() -> tuple[LinearSVC, np.ndarray]:
    X, y = digits_features(2, 60)
    y = np.where(y == "zero", "cat", "dog")
    return LinearSVC().fit(X[::2], y[::2]), X[1::2]


def _round_trip(estimator, tmp_path: Path, meta=None) -> LinearModel:
    model = LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT, meta=meta or {"seed": 42})
    save_model(model, tmp_path / "model")
    return load_model(tmp_path / "model")


def _assert_same_as_sklearn(loaded: LinearModel, estimator, X: np.ndarray, rtol=0.0) -> None:
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
    ours, theirs = loaded.decision_function(X), estimator.decision_function(X)
    if theirs.ndim == 1:  # binary: sklearn's score is for classes_[1]
        theirs = np.column_stack([-theirs, theirs])
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-5)


def test_multiclass_round_trip_predicts_like_sklearn(multi, tmp_path):
    estimator, X = multi
    loaded = _round_trip(estimator, tmp_path)
    assert loaded.classes == tuple(estimator.classes_)
    assert loaded.coef.shape == (10, 2048) and loaded.coef.dtype == np.float32
    assert loaded.fingerprint == FINGERPRINT and loaded.meta == {"seed": 42}
    _assert_same_as_sklearn(loaded, estimator, X)


def test_binary_round_trip_expands_to_two_columns(binary, tmp_path):
    estimator, X = binary
    loaded = _round_trip(estimator, tmp_path)
    assert loaded.coef.shape == (1, 2048) and loaded.classes == ("cat", "dog")
    scores = loaded.decision_function(X)
    assert scores.shape == (len(X), 2)
    np.testing.assert_allclose(scores[:, 0], -scores[:, 1])
    _assert_same_as_sklearn(loaded, estimator, X)
    assert {"cat", "dog"} == set(loaded.predict(X))


@pytest.mark.parametrize(
    ("make", "rtol"),
    [
        # SGD keeps float32 and scores here reach ~1e3: sklearn's own scores carry
        # float32 rounding (~1e-7 relative), so compare relatively.
        (lambda: SGDClassifier(random_state=0, max_iter=20, tol=None), 2e-6),
        (lambda: OneVsRestClassifier(LinearSVC(dual=False)), 0.0),
    ],
    ids=["sgd", "one-vs-rest"],
)
def test_other_linear_estimators(make, rtol, tmp_path):
    X, y = digits_features(4, 30)
    estimator = make().fit(X, y)
    _assert_same_as_sklearn(_round_trip(estimator, tmp_path), estimator, X, rtol=rtol)


def test_top_k(multi):
    estimator, X = multi
    model = LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT)
    labels, scores = model.top_k(X, 3)
    assert labels.shape == scores.shape == (len(X), 3)
    np.testing.assert_array_equal(labels[:, 0], estimator.predict(X))
    assert (np.diff(scores, axis=1) <= 0).all()
    np.testing.assert_allclose(scores[:, 0], estimator.decision_function(X).max(axis=1), atol=1e-5)
    assert model.top_k(X[:2], 50)[0].shape == (2, 10)
    with pytest.raises(ConfigError, match="k=0"):
        model.top_k(X, 0)


def test_saved_files_are_plain_and_described(multi, tmp_path):
    estimator, _ = multi
    model = LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT, meta={"n_train": 200})
    save_model(model, tmp_path)
    with np.load(tmp_path / NPZ_NAME, allow_pickle=False) as npz:
        assert set(npz.files) == {"coef", "intercept", "classes"}
        assert npz["classes"].dtype.kind == "U"
    doc = json.loads((tmp_path / JSON_NAME).read_text())
    assert doc["format_version"] == 1 and doc["fingerprint"] == FINGERPRINT
    assert doc["classes"] == list(estimator.classes_) and doc["meta"] == {"n_train": 200}
    assert set(doc["versions"]) == {"pool3", "numpy", "scikit-learn"}


class _RunsCode:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickled_object_array_is_refused_without_running_it(multi, tmp_path):
    estimator, _ = multi
    model_dir = tmp_path / "model"
    save_model(LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT), model_dir)
    marker = tmp_path / "pwned"
    evil = np.empty(len(estimator.classes_), dtype=object)
    evil[:] = [_RunsCode(marker)] * len(evil)
    model = load_model(model_dir)
    np.savez(model_dir / NPZ_NAME, coef=model.coef, intercept=model.intercept, classes=evil)
    # Make the checksum match, so that it is allow_pickle=False that stops it.
    doc = json.loads((model_dir / JSON_NAME).read_text())
    doc["npz_sha256"] = hashlib.sha256((model_dir / NPZ_NAME).read_bytes()).hexdigest()
    (model_dir / JSON_NAME).write_text(json.dumps(doc))
    with pytest.raises(ModelError) as err:
        load_model(model_dir)
    assert NPZ_NAME in str(err.value) and "pool3 train" in str(err.value)
    assert not marker.exists()
    # The file really is malicious: a pickle-allowing loader would have run it.
    with np.load(model_dir / NPZ_NAME, allow_pickle=True) as npz:
        npz["classes"]
    assert marker.exists()


def test_missing_or_tampered_files_name_the_file(multi, tmp_path):
    estimator, _ = multi
    save_model(LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT), tmp_path)
    good = (tmp_path / NPZ_NAME).read_bytes()

    (tmp_path / NPZ_NAME).write_bytes(good[:-10])
    with pytest.raises(ModelError, match=f"{NPZ_NAME} does not match the checksum"):
        load_model(tmp_path)

    doc = json.loads((tmp_path / JSON_NAME).read_text())
    garbage = b"not a zip file at all"
    (tmp_path / NPZ_NAME).write_bytes(garbage)
    (tmp_path / JSON_NAME).write_text(
        json.dumps({**doc, "npz_sha256": hashlib.sha256(garbage).hexdigest()})
    )
    with pytest.raises(ModelError, match=f"{NPZ_NAME} is corrupt"):
        load_model(tmp_path)

    (tmp_path / JSON_NAME).write_text("{not json")
    with pytest.raises(ModelError, match=f"{JSON_NAME} is unreadable or not JSON"):
        load_model(tmp_path)

    with pytest.raises(
        ModelError, match=f"{JSON_NAME} not found or unreadable .*re-run `pool3 train`"
    ):
        load_model(tmp_path / "nowhere")


def test_json_must_agree_with_arrays(multi, tmp_path):
    estimator, _ = multi
    save_model(LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT), tmp_path)
    doc = json.loads((tmp_path / JSON_NAME).read_text())
    (tmp_path / JSON_NAME).write_text(json.dumps({**doc, "classes": doc["classes"][::-1]}))
    with pytest.raises(ModelError, match="classes disagree"):
        load_model(tmp_path)
    (tmp_path / JSON_NAME).write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(ModelError, match="format_version 99, expected 1"):
        load_model(tmp_path)


def test_model_checks_shapes_and_is_read_only(multi):
    estimator, _ = multi
    model = LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT)
    with pytest.raises(ModelError, match=r"shape \(3, 100\), the classifier expects \(n, 2048\)"):
        model.decision_function(np.zeros((3, 100), dtype=np.float32))
    with pytest.raises(ValueError, match="read-only"):
        model.coef[0, 0] = 1.0
    with pytest.raises(ModelError, match="intercept has shape"):
        LinearModel(model.coef, model.intercept[:3], model.classes, FINGERPRINT)
    with pytest.raises(ModelError, match="2\\+ distinct classes"):
        LinearModel(model.coef[:1], model.intercept[:1], ("a",), FINGERPRINT)
    with pytest.raises(ModelError, match="not fitted"):
        LinearModel.from_sklearn(LinearSVC(), fingerprint=FINGERPRINT)


def test_model_directory_by_uri_with_and_without_spark(multi, tmp_path, spark, monkeypatch):
    """A ``file://`` model directory, from a working directory elsewhere: read and written
    through Spark's Hadoop FileSystem and through pyarrow.fs alike, no stray folders."""
    estimator, X = multi
    model = LinearModel.from_sklearn(estimator, fingerprint=FINGERPRINT)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for via, session in (("arrow", None), ("hadoop", spark)):
        uri = (tmp_path / via / "model").as_uri()
        save_model(model, uri, spark=session)
        saved = (tmp_path / via / "model").iterdir()
        assert sorted(p.name for p in saved if p.suffix != ".crc") == [JSON_NAME, NPZ_NAME]
        for reader in (None, spark):
            loaded = load_model(uri, spark=reader)
            np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert list(elsewhere.iterdir()) == []
    with pytest.raises(ModelError, match=r"nowhere/classifier.json not found or unreadable"):
        load_model((tmp_path / "nowhere").as_uri(), spark=spark)
