"""Training on the cluster: ``train.solver = "spark"`` (Newton over cached float32 rows) and
``"mllib"`` (Spark MLlib), real fits on the test session."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.functions import array_to_vector
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sklearn.svm import LinearSVC

from featuredata import FINGERPRINT, blob_frame, table
from pool3.commands.train import run_train
from pool3.config import TrainConfig, TrainParams, load_config
from pool3.errors import ConfigError, DataError
from pool3.training.classifier import LinearModel, load_model, save_model
from pool3.training.evaluation.result import TrainResult
from pool3.training.solvers.choose import Choice, pick_solver
from pool3.training.solvers.spark_solver import train_and_evaluate_spark
from pool3.training.table.rules import prepare

MLLIB = TrainParams(solver="mllib")
AS_CONFIGURED = Choice("mllib", "solver='mllib' as configured")


def arrays(frame: pd.DataFrame, paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = frame.set_index("path").loc[list(paths)]
    return np.stack(rows["features"].to_numpy()).astype(np.float32), rows["label"].to_numpy()


@pytest.fixture(scope="module")
def three() -> pd.DataFrame:
    return blob_frame(3, 40)


@pytest.fixture(scope="module")
def fitted(spark: SparkSession, three: pd.DataFrame) -> TrainResult:
    return train_and_evaluate_spark(
        prepare(table(spark, three), MLLIB), MLLIB, choice=AS_CONFIGURED
    )


def spark_predictions(result: TrainResult, frame: pd.DataFrame, spark: SparkSession) -> list:
    """Labels the fitted MLlib model itself predicts for every row of ``frame``, by path."""
    vectors = table(spark, frame).select("path", array_to_vector(F.col("features")).alias("vector"))
    rows = result.estimator.transform(vectors).select("path", "prediction").collect()
    by_path = {r["path"]: result.classifier.classes[int(r["prediction"])] for r in rows}
    return [by_path[p] for p in frame["path"]]


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"penalty": "l1"}, ["train.solver = 'mllib'", "penalty='l1'", "L2"]),
        ({"multi_class": "crammer_singer"}, ["crammer_singer", "train.multi_class = 'ovr'"]),
    ],
)
def test_mllib_solver_refuses_what_mllib_cannot_fit(kwargs, words):
    with pytest.raises(ConfigError) as err:
        TrainParams(solver="mllib", **kwargs)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("solver", ["newton", "spark"])
def test_newton_solvers_refuse_other_objectives(solver):
    with pytest.raises(ConfigError, match=rf"train.solver = '{solver}' with loss='hinge'"):
        TrainParams(solver=solver, loss="hinge")


def test_liblinear_rules_do_not_apply_to_mllib():
    # liblinear refuses hinge + dual=False; MLlib ignores dual.
    assert TrainParams(solver="mllib", loss="hinge", dual=False).solver == "mllib"
    with pytest.raises(ConfigError):
        TrainParams(solver="liblinear", loss="hinge", dual=False)


# --- fitting --------------------------------------------------------------------------------


def test_three_classes_learn_and_give_pool3s_model_format(fitted, three):
    assert fitted.metrics["accuracy"] >= 0.95
    assert fitted.solver == "Spark MLlib OneVsRest(LinearSVC, parallelism=2)"
    model = fitted.classifier
    assert model.classes == ("c00", "c01", "c02") == fitted.labels
    assert model.coef.shape == (3, 2048) and model.coef.dtype == np.float32
    assert model.fingerprint == FINGERPRINT
    assert (fitted.n_train, fitted.n_test) == (96, 24) and fitted.scores_test.shape == (24, 3)
    assert model.meta["converged"] is True and model.meta["loss_fitted"] == "hinge"
    X_test, y_test = arrays(three, fitted.paths_test)
    np.testing.assert_array_equal(fitted.y_test, y_test)
    np.testing.assert_allclose(fitted.scores_test, model.decision_function(X_test), rtol=1e-9)
    json.dumps(model.meta)


def test_saved_model_predicts_as_the_spark_model(fitted, three, spark, tmp_path):
    save_model(fitted.classifier, tmp_path)
    loaded = load_model(tmp_path)
    X, _ = arrays(three, three["path"].to_numpy())
    ours = loaded.predict(X)
    theirs = spark_predictions(fitted, three, spark)
    assert (ours == np.asarray(theirs)).mean() == 1.0
    np.testing.assert_array_equal(loaded.coef, fitted.classifier.coef)


def hinge_objective(model: LinearModel, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scikit-learn's ``0.5 ||w||^2 + C sum(hinge)`` (C = 1) of each one-vs-rest row."""
    out = []
    for k, label in enumerate(model.classes):
        w = model.coef[k].astype(np.float64)
        margin = X.astype(np.float64) @ w + float(model.intercept[k])
        out.append(0.5 * w @ w + np.maximum(0.0, 1.0 - np.where(y == label, 1, -1) * margin).sum())
    return np.array(out)


def test_agrees_with_scikit_learn_hinge_svc(fitted, three):
    """regParam = 1/(C n) makes MLlib's objective scikit-learn's ``LinearSVC(loss='hinge')``."""
    train_paths = np.asarray(sorted(set(three["path"]) - set(fitted.paths_test)))
    X_train, y_train = arrays(three, train_paths)
    X_test, _ = arrays(three, fitted.paths_test)
    ref = LinearSVC(C=1.0, loss="hinge", dual=True, max_iter=20_000, tol=1e-6).fit(X_train, y_train)
    assert (ref.predict(X_test) == fitted.y_pred).mean() >= 0.95
    assert (ref.predict(X_train) == fitted.classifier.predict(X_train)).mean() >= 0.95
    sklearn_model = LinearModel.from_sklearn(ref, fingerprint=FINGERPRINT)
    ratio = hinge_objective(fitted.classifier, X_train, y_train) / hinge_objective(
        sklearn_model, X_train, y_train
    )
    # MLlib stops early on these separable blobs (~5x scikit-learn's optimum, |w| ~1.7x);
    # a wrong mapping (regParam = C, or 1/C) lands orders of magnitude away.
    assert np.all((ratio >= 0.99) & (ratio < 20)), ratio


@pytest.mark.slow  # one more MLlib fit; run_train's fallback test covers the binary case too
def test_binary_problem_has_one_row_scoring_classes_1(spark):
    frame = blob_frame(2, 30, seed=1)
    result = train_and_evaluate_spark(
        prepare(table(spark, frame), MLLIB), MLLIB, choice=AS_CONFIGURED
    )
    assert result.solver == "Spark MLlib LinearSVC"
    assert result.classifier.coef.shape == (1, 2048) and result.scores_test.shape == (12, 2)
    assert result.metrics["accuracy"] >= 0.95
    X, y = arrays(frame, frame["path"].to_numpy())
    theirs = np.asarray(spark_predictions(result, frame, spark))
    np.testing.assert_array_equal(result.classifier.predict(X), theirs)
    assert (theirs == y).mean() >= 0.95  # the row scores c01, not c00


# --- pool3 train ------------------------------------------------------------------------------


def write_features(spark: SparkSession, frame: pd.DataFrame, path: str) -> str:
    table(spark, frame).write.parquet(path)
    (Path(path) / "_SUCCESS").write_text("")  # committed: train reads only committed tables
    return path


@pytest.mark.slow  # one more MLlib fit; the fallback test below runs the same path
def test_run_train_with_spark_solver_writes_model_report_manifest(spark, tmp_path, caplog):
    feats = write_features(spark, blob_frame(2, 30, seed=2), str(tmp_path / "feats"))
    config = load_config(overrides={"train.solver": "mllib"}, env={})
    with caplog.at_level(logging.INFO, logger="pool3"):
        out = run_train(spark, config, features_path=feats, model_dir=str(tmp_path / "model"))
    model_dir = tmp_path / "model"
    assert out["accuracy"] >= 0.95 and "Accuracy:" in out["summary_line"]
    assert "solver: mllib because solver='mllib' as configured" in caplog.text
    assert "feature rows" not in caplog.text  # the features never went to the driver
    model = load_model(model_dir)
    assert model.classes == ("c00", "c01") and model.meta["estimator"] == "Spark MLlib LinearSVC"
    manifest = json.loads((model_dir / "_pool3_manifest.json").read_text())
    assert manifest["extra"]["solver"] == "Spark MLlib LinearSVC"
    report = json.loads((model_dir / "metrics.json").read_text())
    assert report["run"]["estimator"] == "Spark MLlib LinearSVC"
    assert (model_dir / "report.html").is_file() and (model_dir / "_SUCCESS").is_file()


def test_solver_choice_before_collecting(spark, tmp_path):
    feats = write_features(spark, blob_frame(2, 30, seed=3), str(tmp_path / "feats"))
    data = prepare(spark.read.parquet(feats), TrainParams())

    def choice(limit: float, **kwargs: object) -> Choice:
        params = TrainConfig(max_collect_mb=limit, **kwargs)  # type: ignore[arg-type]
        return pick_solver(data, params)

    assert choice(1, solver="mllib") == Choice("mllib", "solver='mllib' as configured")
    small = choice(2)  # 60 rows x 8 KiB ~ 0.5 MB
    assert small.name == "newton" and "<= train.max_collect_mb=2" in small.why
    big = choice(0.1)
    assert big.name == "spark" and "above train.max_collect_mb=0.1" in big.why
    for kwargs in ({"solver": "sgd"}, {"solver": "newton"}):
        with pytest.raises(DataError, match=r"above train\.max_collect_mb=0.1: raise it"):
            choice(0.1, **kwargs)
    with pytest.raises(DataError, match=r"fitted on the driver only"):
        choice(0.1, penalty="l1")


def test_auto_falls_back_to_spark_above_max_collect_mb(spark, tmp_path, caplog):
    feats = write_features(spark, blob_frame(2, 30, seed=3), str(tmp_path / "feats"))
    tiny = {"train.max_collect_mb": 0.1}  # 60 rows x 8 KiB ~ 0.5 MB
    with pytest.raises(DataError, match=r"train\.solver = 'spark'"):
        run_train(
            spark,
            load_config(overrides={**tiny, "train.solver": "liblinear"}, env={}),
            features_path=feats,
            model_dir=str(tmp_path / "refused"),
        )
    assert not (tmp_path / "refused").exists()
    config = load_config(overrides=tiny, env={})
    model_dir = tmp_path / "model"
    with caplog.at_level(logging.INFO, logger="pool3"):
        out = run_train(spark, config, features_path=feats, model_dir=str(model_dir))
    assert "solver: spark because 48 training rows" in caplog.text
    assert "above train.max_collect_mb=0.1" in caplog.text
    assert "feature rows" not in caplog.text  # the features never went to the driver
    # Accuracy also checks the binary convention: the one coef row must score classes[1].
    assert out["accuracy"] >= 0.95 and "n_test=12" in out["summary_line"]
    model = load_model(model_dir)
    assert model.classes == ("c00", "c01") and model.coef.shape == (1, 2048)
    assert model.meta["estimator"].startswith("newton (float32, Spark, ")
    assert model.meta["converged"] is True and model.meta["passes"] > 0
    manifest = json.loads((model_dir / "_pool3_manifest.json").read_text())
    assert manifest["extra"]["solver"] == model.meta["estimator"]
    report = json.loads((model_dir / "metrics.json").read_text())
    assert report["run"]["estimator"] == model.meta["estimator"]
    assert (model_dir / "report.html").is_file() and (model_dir / "_SUCCESS").is_file()


@pytest.mark.parametrize("split", ["content", "sklearn"])
def test_auto_switching_solver_does_not_change_the_split(spark, tmp_path, split):
    feats = write_features(spark, blob_frame(3, 20, seed=4), str(tmp_path / "feats"))
    held_out = {}
    for name, limit in (("driver", 4096), ("spark", 0.1)):  # 60 rows ~ 0.5 MB
        config = load_config(
            overrides={"train.max_collect_mb": limit, "train.split": split}, env={}
        )
        run_train(spark, config, features_path=feats, model_dir=str(tmp_path / name))
        model = load_model(tmp_path / name)
        held_out[name] = (model.meta["n_test"], model.meta["split"])
    assert held_out["driver"][1]["method"] == split
    assert "Spark" not in load_model(tmp_path / "driver").meta["estimator"]
    assert load_model(tmp_path / "spark").meta["estimator"].startswith("newton (float32, Spark")
    assert held_out["driver"] == held_out["spark"]  # same images held out, by digest
