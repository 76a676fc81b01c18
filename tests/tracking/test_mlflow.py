"""MLflow end to end, against a real tracking server (tests/mlflowserver.py): a tracked
featurize and ``pool3 train --mlflow`` read back through ``MlflowClient``; the registered
model scored by ``mlflow.pyfunc`` in a plain Python process, by ``spark_udf`` on Spark Classic
and by ``pool3 classify --model models:/NAME@ALIAS``, with the same predictions; training over
Spark Connect logged by the client; and the errors: a server that cannot be reached, a model,
alias or fingerprint that does not fit.

Real images (the bundled Fashion-MNIST sample), the real model, real Spark.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow  # pool3[mlflow]: make install installs it
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clirun import SPARK_LOG_MARK, assert_error, cli_env, run
from conftest import SPARK_TEST_OVERRIDES
from mlflowserver import free_port
from paths import REPO, SAMPLE
from pool3.commands.featurize import run_featurize
from pool3.config import load_config
from pool3.errors import ModelError
from pool3_tools.datasets import FASHION_MNIST_CLASSES

TRAIN_PER_CLASS, HELD_PER_CLASS = 12, 3
NAME, ALIAS = "products", "champion"
BROKEN = REPO / "tests" / "data" / "images" / "corrupt.jpg"


def tracked_env(server, **extra: str) -> dict[str, str]:
    env = cli_env()
    env.update(MLFLOW_TRACKING_URI=server.uri, MLFLOW_EXPERIMENT_NAME="pool3-tests", **extra)
    return env


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, Path]:
    """(train: 12 images per class, held out: 3 per class and a corrupt file)."""
    root = tmp_path_factory.mktemp("mlflow-images")
    train, held = root / "train", root / "held"
    train.mkdir()
    held.mkdir()
    for label in FASHION_MNIST_CLASSES:
        files = sorted(SAMPLE.glob(f"{label}_*.png"))
        for png in files[:TRAIN_PER_CLASS]:
            shutil.copy(png, train / png.name)
        for png in files[TRAIN_PER_CLASS : TRAIN_PER_CLASS + HELD_PER_CLASS]:
            shutil.copy(png, held / png.name)
    shutil.copy(BROKEN, held / "broken_corrupt.jpg")
    return train, held


@pytest.fixture(scope="module")
def tracked(spark, mlflow_server, images, tmp_path_factory):
    """featurize (in this process, tracked), then ``pool3 train --mlflow`` (the command)
    registering NAME@ALIAS, then ``pool3 classify --model models:/NAME@ALIAS``."""
    from pool3.tracking.server import connect

    base = tmp_path_factory.mktemp("mlflow-runs")
    train, held = images
    features, model, preds = (str(base / n) for n in ("features", "model", "preds"))
    cfg = load_config(
        overrides={
            **SPARK_TEST_OVERRIDES,
            "model.precision": "float32",
            "mlflow.enabled": True,
            "mlflow.tracking_uri": mlflow_server.uri,
            "mlflow.experiment": "pool3-tests",
        },
        env={},
    )
    assert connect(cfg) == mlflow_server.uri
    featurized = run_featurize(spark, cfg, input_path=str(train), output_path=features)
    env = tracked_env(mlflow_server)
    register = ["--set", f"mlflow.registered_model_name={NAME}", "--set", f"mlflow.alias={ALIAS}"]
    trained = run(
        ["train", "--features", features, "--output", model, "--mlflow", *register,
         "--set", "model.precision=float32", "--master", "local[2]"],
        REPO, env=env,
    )  # fmt: skip
    assert trained.rc == 0, trained.stderr[-3000:]
    classified = run(
        ["classify", "--input", str(held), "--model", f"models:/{NAME}@{ALIAS}", "--output",
         preds, "--precision", "float32", "--max-error-rate", "0.5", "--master", "local[2]"],
        REPO, env=env,
    )  # fmt: skip
    assert classified.rc == 0, classified.stderr[-3000:]
    return {
        "featurized": featurized,
        "trained": trained,
        "features": features,
        "model": model,
        "preds": preds,
        "held": held,
        "client": mlflow.MlflowClient(mlflow_server.uri),
    }


def train_run(tracked):
    client = tracked["client"]
    version = client.get_model_version_by_alias(NAME, ALIAS)
    return client.get_run(version.run_id), version


def test_train_run_has_params_metrics_artifacts_input_and_registered_model(tracked):
    run_, version = train_run(tracked)
    params, metrics = run_.data.params, run_.data.metrics
    assert params["train.C"] == "1.0" and params["train.split"] == "content"
    assert params["mlflow.registered_model_name"] == NAME
    metrics_json = json.loads((Path(tracked["model"]) / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(metrics_json["accuracy"])
    low, high = metrics_json["accuracy_ci95"]
    assert metrics["accuracy_ci95_low"] == pytest.approx(low)
    assert metrics["accuracy_ci95_high"] == pytest.approx(high)
    for key in ("f1_macro", "f1_weighted", "precision_macro", "recall_weighted"):
        assert metrics[key] == pytest.approx(metrics_json[key])
    for label in FASHION_MNIST_CLASSES:
        per = metrics_json["per_class"][label]
        assert metrics[f"class.{label}.f1"] == pytest.approx(per["f1"])
        assert metrics[f"class.{label}.recall"] == pytest.approx(per["recall"])
    assert metrics["duplicates.exact_pairs"] == 0 and metrics["leaked_test_images"] == 0
    assert metrics["suspected_label_errors"] == len(metrics_json["suspected_label_errors"])
    assert metrics["features.errors"] == 0 and "features.ignored" in metrics
    assert metrics["fit.passes"] >= 1 and metrics["fit_seconds"] > 0
    assert run_.data.tags["pool3.solver"].startswith("newton")
    names = {a.path for a in tracked["client"].list_artifacts(run_.info.run_id, "report")}
    for name in ("report.html", "metrics.json", "confusion_matrix.png", "_pool3_manifest.json",
                 "features_manifest.json"):  # fmt: skip
        assert f"report/{name}" in names
    (dataset_input,) = run_.inputs.dataset_inputs
    dataset = dataset_input.dataset
    manifest = (Path(tracked["features"]) / "_pool3_manifest.json").read_bytes()
    import hashlib

    assert dataset.digest == hashlib.sha256(manifest).hexdigest()[:20]
    assert json.loads(dataset.source)["uri"] == tracked["features"]
    assert json.loads(dataset.profile)["num_rows"] == TRAIN_PER_CLASS * 10
    assert version.name == NAME and int(version.version) == 1
    info = mlflow.models.get_model_info(f"models:/{NAME}@{ALIAS}")
    assert "pool3" in info.flavors and info.saved_input_example_info is not None
    assert info.signature.inputs.input_names() == ["path", "content"]
    assert info.signature.outputs.input_names()[:2] == ["predicted", "score"]
    assert "MLflow: run" in tracked["trained"].stdout and f"models:/{NAME}@{ALIAS}" in (
        tracked["trained"].stdout
    )


def test_featurize_run_is_logged_with_its_summary_and_manifest(tracked):
    logged = tracked["featurized"]["mlflow"]
    run_ = tracked["client"].get_run(logged["run_id"])
    assert run_.data.metrics["images"] == TRAIN_PER_CLASS * 10
    assert run_.data.metrics["errors"] == 0
    assert run_.data.tags["pool3.command"] == "featurize"
    names = {a.path for a in tracked["client"].list_artifacts(logged["run_id"], "featurize")}
    assert {"featurize/_pool3_manifest.json", "featurize/summary.json"} <= names


def classify_table(tracked) -> pd.DataFrame:
    rows = pq.read_table(tracked["preds"]).to_pandas()
    return rows.assign(name=rows["path"].str.rsplit("/", n=1).str[-1]).set_index("name")


def assert_same_predictions(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Same labels, scores within 1e-4, the same error rows."""
    assert sorted(expected.index) == sorted(got.index)
    for name, row in expected.iterrows():
        other = got.loc[name]
        assert (row["error"] is None) == (other["error"] is None), name
        if row["error"] is None:
            assert other["predicted"] == row["predicted"], name
            assert abs(float(other["score"]) - float(row["score"])) < 1e-4, name
            assert list(other["top_labels"]) == list(row["top_labels"]), name
            np.testing.assert_allclose(other["top_scores"], row["top_scores"], atol=1e-4)


def test_pyfunc_in_a_plain_python_process_predicts_as_classify(tracked, mlflow_server):
    paths = sorted(str(p) for p in tracked["held"].iterdir())
    script = (
        "import json, sys, mlflow\n"
        "import pandas as pd\n"
        f"model = mlflow.pyfunc.load_model('models:/{NAME}@{ALIAS}')\n"
        "out = model.predict(pd.DataFrame({'path': json.loads(sys.argv[1])}))\n"
        "print(out.to_json(orient='records'))\n"
    )
    env = {k: v for k, v in cli_env().items() if not k.startswith(("SPARK", "PYSPARK"))}
    env["MLFLOW_TRACKING_URI"] = mlflow_server.uri
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = pd.DataFrame(json.loads(done.stdout.strip().splitlines()[-1]))
    got.index = [Path(p).name for p in paths]
    assert list(got.columns) == ["predicted", "score", "top_labels", "top_scores", "error"]
    assert got.loc["broken_corrupt.jpg", "predicted"] is None
    assert "corrupt" in got.loc["broken_corrupt.jpg", "error"]
    assert_same_predictions(classify_table(tracked), got)


def test_spark_udf_on_classic_predicts_as_classify(tracked, spark, mlflow_server):
    from pyspark.sql import functions as F

    mlflow.set_tracking_uri(mlflow_server.uri)
    udf = mlflow.pyfunc.spark_udf(spark, f"models:/{NAME}@{ALIAS}", env_manager="local")
    paths = sorted(str(p) for p in tracked["held"].iterdir())
    df = spark.createDataFrame([(p,) for p in paths], "path string")
    rows = df.select("path", udf(F.struct("path")).alias("p")).select("path", "p.*").toPandas()
    rows.index = [Path(p).name for p in rows["path"]]
    # spark_udf casts a string output column that has values to numpy str: a null reads
    # "None" there (mlflow.pyfunc._convert_struct_values; README, "MLflow")
    assert rows.loc["broken_corrupt.jpg", "predicted"] == "None"
    for column in ("predicted", "error"):
        rows[column] = rows[column].where(rows[column] != "None", None)
    assert_same_predictions(classify_table(tracked), rows)


def test_classify_summary_names_the_registered_model(tracked):
    manifest = json.loads((Path(tracked["preds"]) / "_pool3_manifest.json").read_text())
    assert manifest["inputs"]["classifier"] == f"models:/{NAME}@{ALIAS}"


def test_unreachable_server_fails_before_spark_starts(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    env = cli_env()
    env["MLFLOW_TRACKING_URI"] = dead
    out = tmp_path / "model"
    result = run(
        ["train", "--features", str(tmp_path / "none"), "--output", str(out), "--mlflow"],
        REPO, env=env,
    )  # fmt: skip
    assert_error(result, "train", 4, dead, "cannot be reached", "mlflow.required=false")
    assert SPARK_LOG_MARK not in result.stderr and not out.exists()


def test_unreachable_server_is_a_warning_when_not_required(caplog):
    from pool3.commands.run import _before_spark

    dead = f"http://127.0.0.1:{free_port()}"
    cfg = load_config(
        overrides={"mlflow.enabled": True, "mlflow.tracking_uri": dead, "mlflow.required": False},
        env={},
    )
    config, classifier = _before_spark("train", cfg, {})
    assert not config.mlflow.enabled and classifier is None
    assert any(dead in r.getMessage() and "not tracked" in r.getMessage() for r in caplog.records)


def test_model_uris_that_name_nothing_are_refused(tracked, mlflow_server, tmp_path):
    from pool3.tracking.registry import fetch_classifier

    cfg = load_config(overrides={"mlflow.tracking_uri": mlflow_server.uri}, env={})
    with pytest.raises(ModelError, match="no registered model 'nope'"):
        fetch_classifier("models:/nope@champion", cfg)
    with pytest.raises(
        ModelError, match=r"alias 'staging' of 'products' points nowhere.*@champion"
    ):
        fetch_classifier(f"models:/{NAME}@staging", cfg)
    with pytest.raises(ModelError, match="cannot be read from MLflow"):
        fetch_classifier(f"models:/{NAME}/7", cfg)
    env = tracked_env(mlflow_server)
    result = run(
        ["classify", "--input", str(tmp_path), "--model", "models:/nope@champion",
         "--output", str(tmp_path / "p")],
        REPO, env=env,
    )  # fmt: skip
    assert_error(result, "classify", 5, "no registered model 'nope'")
    assert SPARK_LOG_MARK not in result.stderr


def test_registered_model_of_other_features_is_refused_by_classify(
    spark, tracked, mlflow_server, tmp_path
):
    """A registered classifier whose fingerprint is not the featurizer's: classify refuses
    it with both fingerprints, as it refuses such a model directory."""
    from pool3.commands.classify import run_classify
    from pool3.model import ModelBundle
    from pool3.tracking.flavor import log_model
    from pool3.tracking.registry import fetch_classifier
    from pool3.training.classifier import LinearModel

    other = "inception-v3-other:0123456789abcdef"
    classifier = LinearModel(
        coef=np.ones((3, 2048), np.float32), intercept=np.zeros(3, np.float32),
        classes=("a", "b", "c"), fingerprint=other,
    )  # fmt: skip
    ir = ModelBundle("openvino-ir", b"0", other, "not a network", {}, {"xml": b"<net/>"})
    mlflow.set_tracking_uri(mlflow_server.uri)
    with mlflow.start_run():
        log_model("model", classifier=classifier, featurizer=ir, registered_model_name="other")
    cfg = load_config(
        overrides={**SPARK_TEST_OVERRIDES, "mlflow.tracking_uri": mlflow_server.uri}, env={}
    )
    fetched = fetch_classifier("models:/other/1", cfg)
    assert fetched.fingerprint == other
    with pytest.raises(ModelError, match=f"trained on features {other}"):
        run_classify(
            spark, cfg, input_path=str(tracked["held"]), model_dir="models:/other/1",
            output_path=str(tmp_path / "p"), classifier=fetched,
        )  # fmt: skip
    assert not (tmp_path / "p").exists()


@pytest.mark.connect
def test_train_over_connect_is_logged_by_the_client(
    tracked, connect_server, mlflow_server, tmp_path
):
    from deploy.test_connect import no_java_env

    env = no_java_env(connect_server.url)
    env.update(MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME="pool3-connect")
    result = run(
        ["train", "--features", tracked["features"], "--output", str(tmp_path / "model"),
         "--mlflow", "--set", "mlflow.log_model=false"],
        REPO, env=env,
    )  # fmt: skip
    assert result.rc == 0, result.stderr[-3000:]
    client = tracked["client"]
    experiment = client.get_experiment_by_name("pool3-connect")
    (run_,) = client.search_runs([experiment.experiment_id])
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert run_.data.metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    assert run_.info.status == "FINISHED" and run_.inputs.dataset_inputs


def test_api_train_with_mlflow_logs_its_run_and_model(tracked, spark, mlflow_server):
    import pool3
    from pool3.api.extract import api_config

    cfg = load_config(
        overrides={
            "mlflow.tracking_uri": mlflow_server.uri,
            "mlflow.experiment": "pool3-api",
            "mlflow.registered_model_name": "api-products",
        },
        env={},
    )
    model = pool3.train(spark.read.parquet(tracked["features"]), mlflow=True, config=cfg)
    logged = model.tracked
    assert logged["registered_uri"] == "models:/api-products/1"
    run_ = tracked["client"].get_run(logged["run_id"])
    assert run_.data.metrics["accuracy"] == pytest.approx(model.metrics["accuracy"])
    assert run_.data.tags["pool3.command"] == "api"
    (dataset_input,) = run_.inputs.dataset_inputs  # found from the DataFrame's files
    assert json.loads(dataset_input.dataset.source)["uri"].endswith(Path(tracked["features"]).name)
    # a loaded model logs too (no report: its metrics.json), into the caller's active run
    loaded = pool3.load_model(tracked["model"])
    mlflow.set_tracking_uri(mlflow_server.uri)
    with mlflow.start_run() as outer:
        again = loaded.log_mlflow(config=api_config(cfg), log_model=False)
    assert again["run_id"] == outer.info.run_id
    assert mlflow.MlflowClient().get_run(outer.info.run_id).data.metrics["accuracy"] == (
        pytest.approx(model.metrics["accuracy"])
    )


def test_mlflow_run_id_continues_a_schedulers_run_and_secrets_are_redacted(
    mlflow_server, monkeypatch
):
    from pool3.tracking.runs import log_featurize
    from pool3.tracking.server import connect, tracked_run

    client = mlflow.MlflowClient(mlflow_server.uri)
    experiment = client.create_experiment("pool3-scheduled")
    scheduled = client.create_run(experiment).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", scheduled)
    secret = "s3cr3t-value"
    cfg = load_config(
        overrides={
            "mlflow.tracking_uri": mlflow_server.uri,
            "spark.extra.spark.hadoop.fs.s3a.secret.key": secret,
            "spark.remote": "sc://user:hunter2@host:15002",
        },
        env={},
    )
    connect(cfg)
    with tracked_run(cfg, command="featurize") as run_:
        logged = log_featurize(cfg, {"images": 3, "errors": 1}, "")
    assert run_.info.run_id == logged["run_id"] == scheduled
    params = client.get_run(scheduled).data.params
    assert params["spark.extra"].count("***") == 1 and secret not in params["spark.extra"]
    assert "hunter2" not in params["spark.remote"]
    assert client.get_run(scheduled).data.metrics["errors"] == 1


def test_an_alias_without_a_registered_name_is_refused_before_anything_runs():
    from pool3.commands.run import _before_spark
    from pool3.errors import ConfigError

    dead = f"http://127.0.0.1:{free_port()}"  # never asked: the settings are refused first
    cfg = load_config(
        overrides={"mlflow.enabled": True, "mlflow.tracking_uri": dead, "mlflow.alias": "x"},
        env={},
    )
    with pytest.raises(ConfigError, match=r"mlflow\.alias='x' needs mlflow\.registered_model_name"):
        _before_spark("train", cfg, {})
