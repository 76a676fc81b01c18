"""The public Python API (README, "From Python and notebooks") on real Spark.

In-process tests use the Classic ``spark`` fixture; README's example runs as written, in
subprocesses (tests/apps/api_example.py), on Spark Classic and on a real Spark Connect server
(tests/connect.py), and both must give the same rows, features, split and accuracy.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyspark.ml import Pipeline, PipelineModel

import pool3
from clirun import finish, start
from featuredata import digits_table, table
from paths import REPO
from pool3.api.extract import FEATURE_FIELDS
from pool3.errors import InputError

SAMPLE = REPO / "data" / "fashion-mnist-sample"
IMAGES = REPO / "tests" / "data" / "images"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four sample images and two broken ones."""
    where = tmp_path_factory.mktemp("api-images")
    for png in sorted(SAMPLE.glob("*.png"))[:4]:
        shutil.copy(png, where / png.name)
    shutil.copy(IMAGES / "corrupt.jpg", where / "broken_1.jpg")
    shutil.copy(IMAGES / "truncated.png", where / "cut_2.png")
    return where


def test_the_public_names_are_functions_not_packages():
    assert callable(pool3.featurize) and callable(pool3.train) and callable(pool3.load_model)
    assert isinstance(pool3.ImageFeaturizer(), pool3.ImageFeaturizer)
    import importlib

    importlib.import_module("pool3.extraction.kernel")  # importing the internals changes nothing
    assert callable(pool3.featurize)


def test_featurize_keeps_every_row_and_column_and_gives_error_rows(spark, folder, featurizer):
    paths = sorted(str(p) for p in folder.iterdir())
    rows = [(i, p) for i, p in enumerate(paths)]
    rows += [(90, str(folder / "gone_3.png")), (91, None), (92, "s3://")]
    df = spark.createDataFrame(rows, "id int, path string")
    out = pool3.featurize(df, precision="float32").cache()
    assert out.columns == ["id", "path", *FEATURE_FIELDS]
    got = {r["id"]: r for r in out.collect()}
    assert sorted(got) == [r[0] for r in rows]  # one row per input row, none lost or doubled
    for i, path in rows[: len(paths)]:
        row = got[i]
        assert row["path"] == path
        if "broken" in path or "cut" in path:
            assert row["features"] is None
            assert row["error"].split(":")[0] in {"corrupt", "truncated"}
        else:
            assert row["error"] is None, row["error"]
            pixels = np.asarray(Image.open(path).convert("RGB"))
            direct = featurizer.featurize([pixels])[0]
            assert np.abs(np.asarray(row["features"], np.float32) - direct).max() < 1e-4
            assert (row["runtime"], row["precision"], row["error"]) == ("openvino", "float32", None)
            assert row["model"] == featurizer.fingerprint and len(row["sha256"]) == 64
    assert got[90]["error"].startswith("missing:") and got[90]["features"] is None
    assert got[91]["error"].startswith("unreadable:") and got[91]["path"] is None
    assert got[92]["error"].startswith("unreadable:") and "bucket" in got[92]["error"]
    # binaryFile's content gives the same rows and values as reading the paths
    files = spark.read.format("binaryFile").load(str(folder))
    by_content = {
        r["path"].removeprefix("file:"): r
        for r in pool3.featurize(files, precision="float32").collect()
    }
    for i, path in rows[: len(paths)]:
        a, b = got[i], by_content[path]
        assert (a["error"], a["sha256"]) == (b["error"], b["sha256"])
        if a["features"] is not None:
            assert np.abs(np.asarray(a["features"]) - np.asarray(b["features"])).max() <= 1e-6


def test_featurize_refuses_what_it_cannot_do(spark):
    df = spark.createDataFrame([("a.png", "x")], "file string, error string")
    with pytest.raises(InputError, match=r"no column 'path'.*path_col"):
        pool3.featurize(df)
    with pytest.raises(InputError, match=r"already has column.*error"):
        pool3.featurize(df, path_col="file")


def test_image_featurizer_in_a_pipeline_saved_and_loaded(spark, folder, tmp_path):
    df = spark.createDataFrame([(str(p),) for p in sorted(folder.glob("*.png"))], "uri string")
    stage = pool3.ImageFeaturizer(inputCol="uri", outputCol="vec", precision="float32")
    fitted = Pipeline(stages=[stage]).fit(df)
    fitted.write().overwrite().save(str(tmp_path / "pipe"))
    loaded = PipelineModel.load(str(tmp_path / "pipe"))
    again = loaded.stages[0]
    assert isinstance(again, pool3.ImageFeaturizer)
    assert (again.getInputCol(), again.getOutputCol()) == ("uri", "vec")
    assert again.getOrDefault(again.precision) == "float32"
    a = {r["uri"]: r for r in fitted.transform(df).collect()}
    b = {r["uri"]: r for r in loaded.transform(df).collect()}
    assert len(a) == len(b) == 5 and "vec" in fitted.transform(df).columns
    for uri, row in a.items():
        assert row["error"] == b[uri]["error"]
        if row["vec"] is not None:
            assert np.array_equal(row["vec"], b[uri]["vec"]) and len(row["vec"]) == 2048


def test_train_transform_save_and_load(spark, tmp_path):
    frame = digits_table(4, 30)
    frame.loc[0, "features"], frame.loc[0, "error"] = None, "corrupt: test"
    features = table(spark, frame).withColumnRenamed("label", "kind")
    model = pool3.train(features, label_col="kind", seed=7)
    metrics = model.metrics
    assert metrics["run"]["train_images"] + metrics["run"]["test_images"] == 119
    assert 0.0 <= metrics["accuracy"] <= 1.0 and set(metrics["labels"]) == set(frame.label)
    scored = model.transform(features)
    assert scored.columns == [*features.columns, "predicted", "score", "top_labels", "top_scores"]
    rows = {r["path"]: r for r in scored.collect()}
    assert len(rows) == 120
    bad = rows[frame.path[0]]
    assert bad["predicted"] is None and bad["error"] == "corrupt: test"
    # the test split's predictions are those the metrics count
    tested = model.result.paths_test
    hits = sum(rows[p]["predicted"] == rows[p]["kind"] for p in tested)
    assert hits / len(tested) == pytest.approx(metrics["accuracy"])
    assert all(len(r["top_labels"]) == 3 for r in rows.values() if r["predicted"])  # classify.top_k
    written = model.write_report(str(tmp_path / "report"))
    on_disk = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert on_disk["accuracy"] == metrics["accuracy"] and written["report_html"]
    model.save(str(tmp_path / "model"))
    shutil.copy(tmp_path / "report" / "metrics.json", tmp_path / "model" / "metrics.json")
    again = pool3.load_model(str(tmp_path / "model"))
    assert again.classes == model.classes and again.metrics["accuracy"] == metrics["accuracy"]
    assert np.array_equal(again.classifier.coef, model.classifier.coef)
    other = features.withColumn("model", features["model"].substr(1, 3))
    mismatch = model.transform(other).filter("error is null").count()
    assert mismatch == 0  # features of another model are never scored
    with pytest.raises(InputError, match="no label column 'label'"):
        pool3.train(features)


def test_with_labels_derives_labels_like_featurize(spark):
    df = spark.createDataFrame([("a/shirt_12.png",), ("b/coat/1.jpg",), (None,)], "path string")
    assert [r["label"] for r in pool3.with_labels(df).collect()] == ["shirt", None, None]
    folders = [r["label"] for r in pool3.with_labels(df, "folder").collect()]
    assert folders[:2] == ["a", "coat"]


def _examples(runs: dict[str, tuple[Path, str, str]]) -> dict[str, tuple[dict, np.ndarray]]:
    """README's example once per ``name: (out, --master|--remote, url)``, all at once (each
    in its own process and session; they share only the cores): the results and features.
    Each process runs in its own group, killed with its JVM if it fails or times out."""
    app = REPO / "tests" / "apps" / "api_example.py"
    started = time.monotonic()
    procs = {}
    for name, (out, kind, url) in runs.items():
        out.mkdir()
        procs[name] = start([str(out), kind, url], REPO, dict(os.environ), program=app)
    with ThreadPoolExecutor(max_workers=len(procs)) as pool:  # each drains its own pipes
        done = dict(zip(procs, pool.map(lambda p: finish(p, started, 600), procs.values())))
    for name, result in done.items():
        assert result.rc == 0, (name, result.stderr[-4000:])
    return {
        name: (json.loads((out / "result.json").read_text()), np.load(out / "features.npy"))
        for name, (out, _, _) in runs.items()
    }


@pytest.mark.connect
def test_readme_example_runs_the_same_on_classic_and_connect(connect_server, tmp_path):
    done = _examples(
        {
            "classic": (tmp_path / "classic", "--master", "local[2]"),
            "connect": (tmp_path / "connect", "--remote", connect_server.url),
        }
    )
    (classic, x_classic), (connect, x_connect) = done["classic"], done["connect"]
    assert (classic["connect"], connect["connect"]) == (False, True)
    assert connect["jvm"] is False  # the Connect client started no JVM
    for result in (classic, connect):
        assert result["images"] == result["feature_rows"] == result["prediction_rows"] == 300
        assert result["pipeline_rows"] == 300 and result["pipeline_max_diff"] == 0.0
        assert result["errors"] == 0 and result["loaded_equal"] and result["accuracy"] > 0.7
        assert result["report"] == sorted(
            ["confusion_matrix.csv", "confusion_matrix.png", "metrics.json", "report.html"]
        )
        added = result["prediction_columns"][-4:]
        assert added == ["predicted", "score", "top_labels", "top_scores"]
    for key in ("feature_columns", "precision", "accuracy", "n_test", "test_paths", "predicted"):
        assert classic[key] == connect[key], key
    assert x_classic.shape == x_connect.shape == (300, 2048)
    assert np.abs(x_classic - x_connect).max() <= 1e-6
