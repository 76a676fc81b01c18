"""The Spark featurize step on real files, against calling the featurizer directly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import SPARK_TEST_OVERRIDES
from paths import GOLDEN, IMAGES
from pool3.commands.featurize import run_featurize
from pool3.commands.lifecycle import SUMMARY_NAME
from pool3.config import load_config
from pool3.errors import InputError, OutputError
from pool3.storage.schemas import FEATURES_SCHEMA

MESSY = IMAGES


def config(**overrides):
    return load_config(overrides={**SPARK_TEST_OVERRIDES, **overrides}, env={})


@pytest.fixture()
def image_dir(tmp_path):
    src = tmp_path / "imgs"
    (src / "sub").mkdir(parents=True)
    for name in ("china", "flower"):
        shutil.copy(GOLDEN / f"{name}.png", src / f"{name}_1.png")
    Image.open(GOLDEN / "fmnist_t_shirt.png").save(src / "sub" / "t_shirt_7.JPG", quality=95)
    (src / "notes.txt").write_text("not an image, wrong extension: not listed")
    return src


def read_rows(path):
    table = pq.read_table(path)
    return {Path(r["path"]).name: r for r in table.to_pylist()}, table


def test_spark_features_equal_direct_featurizer(spark, image_dir, tmp_path, featurizer):
    out = tmp_path / "features"
    # float32 on the default runtime (OpenVINO) against the TensorFlow featurizer
    summary = run_featurize(
        spark,
        config(**{"model.precision": "float32"}),
        input_path=str(image_dir),
        output_path=str(out),
    )
    rows, table = read_rows(out)
    assert table.column_names == FEATURES_SCHEMA.fieldNames()
    assert str(table.schema.field("features").type) == "list<element: float not null>"
    assert set(rows) == {"china_1.png", "flower_1.png", "t_shirt_7.JPG"}
    for name, src in (
        ("china_1.png", image_dir / "china_1.png"),
        ("t_shirt_7.JPG", image_dir / "sub" / "t_shirt_7.JPG"),
    ):
        pixels = np.asarray(Image.open(src).convert("RGB"))
        direct = featurizer.featurize([pixels])[0]
        spark_feats = np.asarray(rows[name]["features"], dtype=np.float32)
        assert spark_feats.shape == (2048,)
        assert np.abs(spark_feats - direct).max() < 1e-4
    assert rows["china_1.png"]["label"] == "china"
    assert rows["t_shirt_7.JPG"]["label"] == "t_shirt"
    assert (rows["china_1.png"]["width"], rows["china_1.png"]["height"]) == (299, 299)
    assert rows["china_1.png"]["model"] == featurizer.fingerprint
    assert {(r["runtime"], r["precision"]) for r in rows.values()} == {("openvino", "float32")}
    assert all(r["error"] is None for r in rows.values())
    assert (out / "_SUCCESS").exists() and (out / "_pool3_manifest.json").exists()
    on_disk = json.loads((out / SUMMARY_NAME).read_text())
    assert on_disk["images"] == 3 and on_disk["errors"] == 0 == summary["errors"]


def test_messy_files_become_error_rows(spark, tmp_path):
    src = tmp_path / "messy"
    shutil.copytree(MESSY, src)
    out = tmp_path / "out"
    n_files = sum(
        1
        for p in src.rglob("*")
        if p.is_file()
        and p.suffix.lower() in {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
    )
    summary = run_featurize(
        spark,
        config(**{"featurize.max_error_rate": 1.0}),
        input_path=str(src),
        output_path=str(out),
    )
    rows, _ = read_rows(out)
    assert summary["images"] == n_files == len(pq.read_table(out))
    by_reason = summary["errors_by_reason"]
    assert by_reason.get("empty", 0) >= 1 and by_reason.get("not_an_image", 0) >= 1
    assert by_reason.get("too_large", 0) >= 1 and by_reason.get("truncated", 0) >= 1
    for row in rows.values():
        assert (row["error"] is None) == (row["features"] is not None)


def test_error_rate_gate_commits_nothing(spark, tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "a_1.jpg").write_bytes(b"")
    (src / "b_1.jpg").write_bytes(b"<html>nope</html>")
    shutil.copy(GOLDEN / "china.png", src / "china_1.png")
    out = tmp_path / "out"
    from pool3.errors import ThresholdError

    with pytest.raises(ThresholdError, match=r"2 of 3 images failed"):
        run_featurize(spark, config(), input_path=str(src), output_path=str(out))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_input_and_output_checks(spark, image_dir, tmp_path):
    with pytest.raises(InputError, match=r"does not exist|not found|missing"):
        run_featurize(
            spark, config(), input_path=str(tmp_path / "nope"), output_path=str(tmp_path / "o")
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no images found"):
        run_featurize(spark, config(), input_path=str(empty), output_path=str(tmp_path / "o"))
    out = tmp_path / "done"
    run_featurize(spark, config(), input_path=str(image_dir), output_path=str(out))
    with pytest.raises(OutputError, match="overwrite"):
        run_featurize(spark, config(), input_path=str(image_dir), output_path=str(out))
    again = run_featurize(
        spark,
        config(**{"output.mode": "overwrite"}),
        input_path=str(image_dir),
        output_path=str(out),
    )
    assert again["images"] == 3


def test_incremental_featurizes_only_new_content(spark, image_dir, tmp_path):
    out = tmp_path / "inc"
    inc = config(**{"output.mode": "incremental"})
    first = run_featurize(spark, inc, input_path=str(image_dir), output_path=str(out))
    assert first["featurized"] == 3
    shutil.copy(GOLDEN / "fmnist_ankle_boot.png", image_dir / "ankle_boot_3.png")
    second = run_featurize(spark, inc, input_path=str(image_dir), output_path=str(out))
    assert second["featurized"] == 1 and second["reused"] == 3 and second["images"] == 4
    full = tmp_path / "full"
    run_featurize(spark, config(), input_path=str(image_dir), output_path=str(full))
    inc_rows, _ = read_rows(out)
    full_rows, _ = read_rows(full)
    assert set(inc_rows) == set(full_rows)
    for name, row in full_rows.items():
        other = inc_rows[name]
        assert {k: row[k] for k in ("label", "sha256", "width", "height", "model", "error")} == {
            k: other[k] for k in ("label", "sha256", "width", "height", "model", "error")
        }
        assert np.abs(np.asarray(row["features"]) - np.asarray(other["features"])).max() < 1e-5


def test_without_prefetch_the_rows_are_the_same(spark, image_dir, tmp_path):
    runs = {}
    for prefetch in (True, False):
        out = tmp_path / f"prefetch-{prefetch}"
        on = config(**{"featurize.prefetch": prefetch})
        summary = run_featurize(spark, on, input_path=str(image_dir), output_path=str(out))
        runs[prefetch] = (summary, read_rows(out)[0])
    (with_summary, with_rows), (without_summary, without_rows) = runs[True], runs[False]
    assert with_summary["prefetch_wait_seconds"] >= 0.0
    assert without_summary["prefetch_wait_seconds"] is None  # no thread, no waits measured
    assert without_summary["decode_seconds"] > 0.0 and without_summary["images"] == 3
    assert set(with_rows) == set(without_rows) == {"china_1.png", "flower_1.png", "t_shirt_7.JPG"}
    for name, row in with_rows.items():
        other = without_rows[name]
        assert {k: v for k, v in row.items() if k != "features"} == {
            k: v for k, v in other.items() if k != "features"
        }
        np.testing.assert_array_equal(row["features"], other["features"])


def test_warm_up_builds_the_featurizer_the_featurize_step_then_finds(spark):
    # The warm-up job's workers are reused by later jobs, and hold the featurizer under the
    # key the featurize step uses: a later task on such a worker builds nothing.
    from pool3.extraction.shipping import ship_model
    from pool3.extraction.warmup import WarmUp
    from pool3.model import load_bundle

    model = ship_model(spark, load_bundle("default"), config())
    warm = WarmUp(spark, model).start()
    warm.wait()
    assert warm.error is None and warm.workers, warm.error
    warmed = {w["pid"] for w in warm.workers}
    key = model.cache_key

    def probe(frames):
        import os
        import sys

        import pandas as pd

        from pool3.model import featurizer

        for _ in frames:
            pass
        yield pd.DataFrame(
            {
                "pid": [os.getpid()],
                "cached": [key in featurizer._CACHE],
                "keras": ["keras" in sys.modules],
            }
        )

    rows = (
        spark.range(0, 8, numPartitions=8)
        .mapInPandas(probe, "pid long, cached boolean, keras boolean")
        .collect()
    )
    reused = [r for r in rows if r["pid"] in warmed]
    assert reused, (warmed, rows)
    assert all(r["cached"] for r in reused), rows
    # TensorFlow was imported without its eager Keras import (import_tensorflow_in_worker)
    assert not any(r["keras"] for r in reused), rows
