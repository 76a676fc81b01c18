"""``pool3.SVMClassifier`` on real Spark: in a Pipeline after ``ImageFeaturizer`` (real images,
the real model), saved and loaded as one ``PipelineModel`` on Spark Classic and over a real
Spark Connect server, and the same fit as ``pool3 train`` on the same feature table.

The pipeline runs in tests/apps/estimator_pipeline.py: in this process on the Classic
``spark`` fixture, and in a subprocess over Connect.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time

import numpy as np
import pytest
from pyspark.ml import Pipeline

import pool3
from clirun import finish, start
from featuredata import digits_table, table
from paths import APPS, REPO, SAMPLE
from pool3.api.estimator import DATA
from pool3.commands.train import run_train
from pool3.config import load_config
from pool3.errors import ConfigError, InputError
from pool3.images.labels import label_from_filename
from pool3_tools.datasets import FASHION_MNIST_CLASSES

#: 8 images of each of 5 classes: 40 images, featurized in seconds
CLASSES, PER_CLASS = FASHION_MNIST_CLASSES[:5], 8


def _app():
    spec = importlib.util.spec_from_file_location(
        "estimator_pipeline", APPS / "estimator_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def image_rows() -> list[list[str]]:
    rows = []
    for label in CLASSES:
        for png in sorted(SAMPLE.glob(f"{label}_[0-9]*.png"))[:PER_CLASS]:
            rows.append([str(png), label_from_filename(str(png))])
    assert len(rows) == len(CLASSES) * PER_CLASS
    return rows


@pytest.fixture(scope="module")
def classic(spark, image_rows, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("estimator-classic")
    return {**_app().fit_save_load(spark, image_rows, str(out)), "out": out}


def _same_predictions(a: dict, b: dict, tol: float) -> None:
    assert sorted(a) == sorted(b)
    for path, (label, score, top_labels, top_scores, error) in a.items():
        other = b[path]
        assert (label, top_labels, error) == (other[0], other[2], other[4]), path
        assert abs(score - other[1]) <= tol and np.allclose(top_scores, other[3], atol=tol)


def _check(result: dict, rows: list[list[str]]) -> None:
    """What every session kind must give: the stages back, predictions unchanged."""
    assert result["stages"] == ["ImageFeaturizer", "SVMClassifierModel"]
    assert result["uid_kept"] and result["coef_equal"]
    params = result["params"]
    assert (params["featuresCol"], params["seed"], params["topK"]) == ("vec", 7, 2)
    assert result["loaded_accuracy"] == result["accuracy"]
    before = result["before"]
    assert len(before) == len(rows)
    assert all(p[4] is None and p[0] in CLASSES and len(p[2]) == 2 for p in before.values())
    _same_predictions(before, result["after"], tol=0.0)
    # the metrics count the predictions transform gives on the held-out images
    labels = dict(map(tuple, rows))
    tested = result["test_paths"]
    hits = sum(before[p][0] == labels[p] for p in tested)
    assert 0 < len(tested) < len(rows) and hits / len(tested) == pytest.approx(result["accuracy"])
    assert "loaded, not trained here" in result["loaded_report"]
    assert {"metrics.json", "report.html"} <= set(result["report"])


def test_pipeline_fits_images_saves_loads_and_predicts_the_same_on_classic(
    classic, image_rows, spark
):
    _check(classic, image_rows)
    # the model stage's data folder is a pool3 model directory (pool3 classify --model)
    stages = classic["out"] / "pipeline" / "stages"
    (stage,) = [p for p in stages.iterdir() if "SVMClassifierModel" in p.name]
    assert (stage / "metadata").is_dir()
    again = pool3.load_model(str(stage / DATA))
    assert again.metrics["accuracy"] == classic["accuracy"]
    loaded = pool3.SVMClassifierModel.load(str(stage))
    assert np.array_equal(loaded.classifier.coef, again.classifier.coef)
    assert loaded.classes == tuple(sorted(CLASSES))
    with pytest.raises(InputError, match=r"not an pool3\.api\.estimator\.SVMClassifierModel"):
        pool3.SVMClassifierModel.load(str(next(p for p in stages.iterdir() if p != stage)))


@pytest.mark.connect
def test_pipeline_fits_saves_loads_and_predicts_over_connect(
    connect_server, classic, image_rows, tmp_path
):
    (tmp_path / "images.json").write_text(json.dumps(image_rows))
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    proc = start(
        [str(tmp_path), "--remote", connect_server.url],
        REPO,
        env,
        program=APPS / "estimator_pipeline.py",
    )
    done = finish(proc, time.monotonic(), timeout=300)
    assert done.rc == 0, done.stderr[-4000:]
    connect = json.loads((tmp_path / "result.json").read_text())
    assert connect["connect"] is True and classic["connect"] is False
    _check(connect, image_rows)
    # the same split, accuracy and predictions as on Spark Classic
    assert (connect["test_paths"], connect["accuracy"]) == (
        classic["test_paths"],
        classic["accuracy"],
    )
    _same_predictions(connect["before"], classic["before"], tol=1e-4)


def test_the_estimator_fits_what_pool3_train_fits_on_the_same_table(spark, tmp_path):
    feats = tmp_path / "features"
    table(spark, digits_table(10, 12)).write.parquet(str(feats))
    (feats / "_SUCCESS").write_text("")  # committed, as pool3 train requires
    settings = {"train.seed": 3, "train.test_size": 0.25}
    cli = run_train(
        spark,
        load_config(overrides=settings, env={}),
        features_path=str(feats),
        model_dir=str(tmp_path / "model"),
    )
    estimator = pool3.SVMClassifier(seed=3, testSize=0.25)
    model = estimator.fit(spark.read.parquet(str(feats)))
    assert 0.5 < model.metrics["accuracy"] < 1.0  # a split and fit that can differ
    assert model.metrics["accuracy"] == cli["accuracy"]
    on_disk = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert model.metrics["run"]["test_images"] == on_disk["run"]["test_images"]
    assert model.metrics["run"]["train_images"] == cli["n_train"]
    from_cli = pool3.load_model(str(tmp_path / "model"))
    assert np.array_equal(model.classifier.coef, from_cli.classifier.coef)
    # the estimator itself saves and loads with its params
    estimator.write().overwrite().save(str(tmp_path / "estimator"))
    back = pool3.SVMClassifier.load(str(tmp_path / "estimator"))
    assert (back.getSeed(), back.getOrDefault(back.testSize)) == (3, 0.25)


def test_the_estimator_refuses_what_it_cannot_fit(spark):
    df = table(spark, digits_table(2, 10))
    with pytest.raises(InputError, match=r"no features column 'vec'.*ImageFeaturizer"):
        pool3.SVMClassifier(featuresCol="vec").fit(df)
    with pytest.raises(ConfigError, match="C"):
        pool3.SVMClassifier(C=-1.0).fit(df)
    with pytest.raises(TypeError, match="'auto'"):
        pool3.SVMClassifier(C="large")
    assert pool3.SVMClassifier(C="auto").getOrDefault("C") == "auto"
    with pytest.raises(InputError, match="holds no classifier"):
        pool3.SVMClassifierModel().transform(df)
    assert isinstance(Pipeline(stages=[pool3.SVMClassifier()]), Pipeline)
