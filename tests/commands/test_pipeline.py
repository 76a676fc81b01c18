"""End to end in-process: featurize the bundled images -> train -> report -> classify held-out.

Real images (``data/fashion-mnist-sample``: 30 per class), the real model and the test run's
one Spark session. 20 images per class train, the other 10 are scored as new images.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import hostile
from conftest import SPARK_TEST_OVERRIDES
from paths import SAMPLE
from pool3.commands.classify import run_classify
from pool3.commands.featurize import run_featurize
from pool3.commands.train import run_train
from pool3.config import load_config
from pool3.images.labels import label_from_filename
from pool3.storage.schemas import PREDICTION_COLUMNS, PREDICTIONS_SCHEMA
from pool3.training.classifier import load_model
from pool3_tools.datasets import FASHION_MNIST_CLASSES

TRAIN_PER_CLASS = 20
MODEL_FILES = {
    "classifier.npz",
    "classifier.json",
    "metrics.json",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "report.html",
    "_SUCCESS",
}
XSS = "<script>alert(1)</script>"


def config(**overrides):
    return load_config(overrides={**SPARK_TEST_OVERRIDES, **overrides}, env={})


def by_name(path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in pq.read_table(path).to_pylist()}


@pytest.fixture(scope="module")
def split_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(train dir with 20 images per class, held-out dir with the other 10 per class)."""
    root = tmp_path_factory.mktemp("fmnist")
    train, held = root / "train", root / "heldout"
    train.mkdir()
    held.mkdir()
    for label in FASHION_MNIST_CLASSES:
        files = sorted(SAMPLE.glob(f"{label}_[0-9]*.png"))
        assert len(files) == 30, (label, len(files))
        for i, src in enumerate(files):
            shutil.copy(src, (train if i < TRAIN_PER_CLASS else held) / src.name)
    return train, held


@pytest.fixture(scope="module")
def trained(spark, split_dirs, tmp_path_factory):
    train_dir, _ = split_dirs
    root = tmp_path_factory.mktemp("trained")
    feats, model_dir = root / "features", root / "model"
    summary = run_featurize(spark, config(), input_path=str(train_dir), output_path=str(feats))
    metrics = run_train(spark, config(), features_path=str(feats), model_dir=str(model_dir))
    return {"features": feats, "model": model_dir, "summary": summary, "metrics": metrics}


@pytest.fixture(scope="module")
def classified(spark, split_dirs, trained, tmp_path_factory):
    _, held = split_dirs
    root = tmp_path_factory.mktemp("classified")
    preds, direct = root / "predictions", root / "direct_features"
    summary = run_classify(
        spark,
        config(),
        input_path=str(held),
        model_dir=str(trained["model"]),
        output_path=str(preds),
    )
    run_featurize(spark, config(), input_path=str(held), output_path=str(direct))
    return {"predictions": preds, "direct": direct, "summary": summary}


def test_featurize_then_train_writes_model_and_report(trained):
    summary, metrics, model_dir = trained["summary"], trained["metrics"], trained["model"]
    assert summary["images"] == 10 * TRAIN_PER_CLASS and summary["errors"] == 0
    assert {p.name for p in model_dir.iterdir()} >= MODEL_FILES
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]
    on_disk = json.loads((model_dir / "metrics.json").read_text())
    assert on_disk["accuracy"] == pytest.approx(metrics["accuracy"])
    # 10 classes: chance is 0.1; 20 training images per class give ~0.7-0.8.
    assert metrics["accuracy"] > 0.5, metrics["accuracy"]
    assert metrics["summary_line"].startswith("Accuracy: ")
    assert (model_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_C_auto_on_real_features(spark, trained, tmp_path):
    """``--C auto`` on the real pool_3 features of the bundled images: the choice is made on
    the 160 training images (5 folds), fitted with it, and shown."""
    model_dir = tmp_path / "model"
    metrics = run_train(
        spark,
        config(**{"train.C": "auto"}),
        features_path=str(trained["features"]),
        model_dir=str(model_dir),
    )
    search = metrics["C_search"]
    assert search["folds"] == 5 and search["chosen"] in search["grid"]
    assert all(0.3 < m <= 1.0 for m in search["cv_accuracy_mean"])  # chance is 0.1
    doc = json.loads((model_dir / "metrics.json").read_text())
    assert doc["C_search"] == search and doc["run"]["C"] == search["chosen"]
    assert load_model(str(model_dir)).meta["params"]["C"] == search["chosen"]
    manifest = json.loads((model_dir / "_pool3_manifest.json").read_text())
    assert manifest["extra"]["C"] == search["chosen"] and "C_search" in manifest["durations_s"]
    assert manifest["config"]["train"]["C"] == "auto"  # what was asked for
    html = (model_dir / "report.html").read_text(encoding="utf-8")
    assert "Choice of C" in html and "Cross-validation accuracy against C" in html


def test_report_names_every_class_and_full_confusion_matrix(trained):
    model_dir = trained["model"]
    html = (model_dir / "report.html").read_text(encoding="utf-8")
    for label in FASHION_MNIST_CLASSES:
        assert label in html, label
    assert f"{trained['metrics']['accuracy']:.1%}" in html
    with (model_dir / "confusion_matrix.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0][1:], rows[1:]
    assert sorted(header) == sorted(FASHION_MNIST_CLASSES) and len(body) == 10
    assert [r[0] for r in body] == header  # rows and columns in the same order
    counts = np.array([[int(v) for v in r[1:]] for r in body])
    assert counts.shape == (10, 10)
    n_test = json.loads((model_dir / "metrics.json").read_text())["run"]["test_images"]
    assert counts.sum() == n_test == 40  # stratified 20%: 4 per class
    assert (counts.sum(axis=1) == 4).all()
    assert np.trace(counts) / n_test == pytest.approx(trained["metrics"]["accuracy"])


def test_classify_held_out_has_schema_and_one_row_per_file(spark, split_dirs, classified):
    _, held = split_dirs
    preds = classified["predictions"]
    # The files carry the contract; Spark's reader would report every field as nullable.
    arrow = pq.read_schema(next(preds.glob("part-*.parquet")))
    assert arrow.names == PREDICTION_COLUMNS
    assert {f.name: (str(f.type), f.nullable) for f in arrow} == {
        "path": ("string", False),
        "predicted": ("string", True),
        "score": ("float", True),
        "top_labels": ("list<element: string not null>", True),
        "top_scores": ("list<element: float not null>", True),
        "model": ("string", False),
        "runtime": ("string", True),
        "precision": ("string", True),
        "error": ("string", True),
    }
    assert spark.read.parquet(str(preds)).schema.simpleString() == (
        PREDICTIONS_SCHEMA.simpleString()
    )
    rows = by_name(preds)
    assert len(pq.read_table(preds)) == len(rows) == 100
    assert set(rows) == {p.name for p in held.iterdir()}
    assert (preds / "_SUCCESS").exists() and classified["summary"]["errors"] == 0
    for row in rows.values():
        assert row["error"] is None and row["predicted"] == row["top_labels"][0]
        assert len(row["top_labels"]) == 3 and row["top_scores"] == sorted(row["top_scores"])[::-1]


def test_classify_agrees_with_model_on_direct_features(trained, classified):
    model = load_model(trained["model"])
    feats = by_name(classified["direct"])
    preds = by_name(classified["predictions"])
    assert set(feats) == set(preds)
    names = sorted(feats)
    X = np.stack([np.asarray(feats[n]["features"], dtype=np.float32) for n in names])
    expected = model.predict(X)
    got = np.array([preds[n]["predicted"] for n in names])
    assert (got == expected).all(), f"{(got != expected).sum()} of {len(names)} disagree"
    best = model.decision_function(X).max(axis=1)
    scores = np.array([preds[n]["score"] for n in names])
    assert np.abs(scores - best).max() < 1e-3
    truth = np.array([label_from_filename(n) for n in names])
    held_accuracy = float((got == truth).mean())
    assert held_accuracy > 0.5, held_accuracy
    assert {preds[n]["model"] for n in names} == {model.fingerprint}


def _dir_digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_run_ids_are_independent_and_rerun_replaces_its_own(spark, tmp_path):
    sets = {}
    for key, labels in {"a": ("bag", "coat"), "b": ("dress",), "c": ("shirt", "sandal")}.items():
        d = tmp_path / key
        d.mkdir()
        for label in labels:
            shutil.copy(sorted(SAMPLE.glob(f"{label}_[0-9]*.png"))[0], d)
        sets[key] = {p.name for p in d.iterdir()}
    out = tmp_path / "features"
    for run_id, src in (("day1", "a"), ("day2", "b")):
        run_featurize(
            spark, config(), input_path=str(tmp_path / src), output_path=str(out), run_id=run_id
        )
    day1, day2 = out / "run_id=day1", out / "run_id=day2"
    assert set(by_name(day1)) == sets["a"] and set(by_name(day2)) == sets["b"]
    assert (day1 / "_SUCCESS").exists() and (day2 / "_SUCCESS").exists()
    before = _dir_digest(day2)
    run_featurize(
        spark, config(), input_path=str(tmp_path / "c"), output_path=str(out), run_id="day1"
    )
    assert set(by_name(day1)) == sets["c"]  # replaced, not merged
    assert _dir_digest(day2) == before  # the other run untouched, byte for byte
    assert sorted(p.name for p in out.iterdir()) == ["run_id=day1", "run_id=day2"]
    # Spark reads the runs as one table partitioned by run_id.
    both = spark.read.parquet(str(out)).groupBy("run_id").count().toPandas()
    assert dict(zip(both["run_id"], both["count"], strict=True)) == {"day1": 2, "day2": 1}


def test_label_with_html_is_escaped_in_report(spark, tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    rows = []
    for label, shown in (("sandal", XSS), ("bag", "bag"), ("trouser", 'a"b&c')):
        for f in sorted(SAMPLE.glob(f"{label}_[0-9]*.png"))[:5]:
            shutil.copy(f, src)
            rows.append({"path": f.name, "label": shown})
    manifest = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    feats, model_dir = tmp_path / "features", tmp_path / "model"
    run_featurize(
        spark,
        config(**{"featurize.labels": f"manifest:{manifest}"}),
        input_path=str(src),
        output_path=str(feats),
    )
    assert {r["label"] for r in by_name(feats).values()} == {XSS, "bag", 'a"b&c'}
    run_train(spark, config(), features_path=str(feats), model_dir=str(model_dir))
    html = (model_dir / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert 'a"b&c' not in html and "a&quot;b&amp;c" in html
    assert load_model(model_dir).classes == tuple(sorted((XSS, "bag", 'a"b&c')))


def test_classify_gives_zero_byte_file_an_error_row(spark, split_dirs, trained, tmp_path):
    # The workers read every listed file themselves, zero-byte ones too.
    _, held = split_dirs
    src = tmp_path / "in"
    src.mkdir()
    good = sorted(held.iterdir())[0]
    shutil.copy(good, src / good.name)
    (src / "blank_1.png").write_bytes(b"")
    preds = tmp_path / "preds"
    summary = run_classify(
        spark,
        config(**{"featurize.max_error_rate": 1.0}),
        input_path=str(src),
        model_dir=str(trained["model"]),
        output_path=str(preds),
    )
    rows = by_name(preds)
    assert set(rows) == {good.name, "blank_1.png"} and summary["images"] == 2
    assert (
        rows["blank_1.png"]["error"].startswith("empty")
        and rows["blank_1.png"]["predicted"] is None
    )
    assert rows[good.name]["error"] is None and summary["errors_by_reason"] == {"empty": 1}


def test_classify_scores_a_hostile_collection(spark, trained, tmp_path):
    # The same names, leftovers and damage as featurize's test, through classify.
    col = hostile.build(tmp_path / "new [photos]")
    preds = tmp_path / "preds"
    summary = run_classify(
        spark,
        config(**{"featurize.max_error_rate": 1.0}),
        input_path=str(col.root),
        model_dir=str(trained["model"]),
        output_path=str(preds),
    )
    rows = {hostile.relative(r["path"], col.root): r for r in pq.read_table(preds).to_pylist()}
    assert set(rows) == col.images and summary["images"] == len(col.images)
    assert summary["images"] + summary["ignored"] == hostile.find_count(col.root)
    assert summary["ignored_by_reason"] == col.ignored
    for name, row in rows.items():
        if name in col.failing:
            assert row["error"].startswith(col.failing[name]) and row["predicted"] is None
        else:
            assert row["error"] is None and row["predicted"] in FASHION_MNIST_CLASSES, name


def test_train_refuses_uncommitted_and_truncated_tables(spark, trained, tmp_path):
    from pool3.errors import InputError

    parts = sorted(trained["features"].glob("part-*.parquet"))
    assert len(parts) >= 2, parts
    uncommitted = tmp_path / "uncommitted"
    shutil.copytree(trained["features"], uncommitted)
    (uncommitted / "_SUCCESS").unlink()
    with pytest.raises(InputError, match=r"has no _SUCCESS: it is not a committed output"):
        run_train(spark, config(), features_path=str(uncommitted), model_dir=str(tmp_path / "m1"))
    truncated = tmp_path / "truncated [copy]"  # glob characters: read literally
    shutil.copytree(trained["features"], truncated)
    (truncated / parts[0].name).unlink()
    manifest = json.loads((truncated / "_pool3_manifest.json").read_text())
    del manifest["parts"]  # as committed before parts were recorded: the row count tells
    (truncated / "_pool3_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"holds \d+ rows but its _pool3_manifest.json records"):
        run_train(spark, config(), features_path=str(truncated), model_dir=str(tmp_path / "m2"))
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_classify_refuses_an_uncommitted_model_directory(spark, split_dirs, trained, tmp_path):
    from pool3.errors import ModelError

    model = tmp_path / "model"
    shutil.copytree(trained["model"], model)
    (model / "_SUCCESS").unlink()
    with pytest.raises(ModelError, match=r"has no _SUCCESS: it is not a committed model"):
        run_classify(
            spark,
            config(),
            input_path=str(split_dirs[1]),
            model_dir=str(model),
            output_path=str(tmp_path / "p"),
        )


def test_file_uris_from_another_working_directory(spark, split_dirs, tmp_path, monkeypatch):
    """featurize (labels from a manifest given by URI), train and classify by ``file://``
    URI, run from an unrelated working directory: everything lands where the URIs say,
    the model is read back by URI."""
    train_dir, held = split_dirs
    images = tmp_path / "images"
    images.mkdir()
    for label in FASHION_MNIST_CLASSES:  # 6 of the 20 training images per class
        for src in sorted(train_dir.glob(f"{label}_[0-9]*.png"))[:6]:
            shutil.copy(src, images / src.name)
    labels = tmp_path / "labels.csv"
    names = sorted(p.name for p in images.iterdir())
    pd.DataFrame({"path": names, "label": [n.rsplit("_", 1)[0].upper() for n in names]}).to_csv(
        labels, index=False
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    root = tmp_path / "by-uri"
    feats, model, preds = (f"file://{root}/{name}" for name in ("features", "model", "preds"))
    summary = run_featurize(
        spark,
        config(**{"featurize.labels": f"manifest:{labels.as_uri()}"}),
        input_path=images.as_uri(),
        output_path=feats,
    )
    assert summary["output"] == f"file:{root}/features" and summary["errors"] == 0
    metrics = run_train(spark, config(), features_path=feats, model_dir=model)
    assert metrics["model_dir"] == f"file:{root}/model"
    assert {p.name for p in (root / "model").iterdir()} >= MODEL_FILES
    run_classify(
        spark, config(), input_path=held.as_uri(), model_dir=model, output_path=preds, run_id="r"
    )
    assert (root / "preds" / "run_id=r" / "_SUCCESS").is_file()
    classes = tuple(sorted(c.upper() for c in FASHION_MNIST_CLASSES))
    assert load_model(model).classes == classes  # read through pyarrow.fs
    assert load_model(model, spark=spark).fingerprint == summary["model"]  # Hadoop FS
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["features", "model", "preds"]
