"""``Pipeline([ImageFeaturizer, SVMClassifier])`` fitted, saved, loaded and applied again, on
one session kind (tests/test_estimator.py).

``python estimator_pipeline.py OUT --master local[2]`` (Spark Classic) or ``--remote
sc://HOST:PORT`` (Spark Connect) reads ``OUT/images.json`` (``[[path, label], ...]``) and
writes what the test compares into ``OUT/result.json``. The test runs :func:`fit_save_load`
in its own process on Classic (its ``spark`` fixture) and this program over Connect (a
Connect session in the test process would switch pyspark to Connect mode for the fixture).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import DataFrame, SparkSession

import pool3
from pool3.errors import InputError


def scored(df: DataFrame) -> dict[str, list[Any]]:
    """``{path: [predicted, score, top_labels, top_scores, error]}`` of a scored frame."""
    rows = df.select("path", "predicted", "score", "top_labels", "top_scores", "error")
    return {
        r["path"]: [r["predicted"], r["score"], r["top_labels"], r["top_scores"], r["error"]]
        for r in rows.collect()
    }


def fit_save_load(spark: SparkSession, rows: list[list[str]], out: str) -> dict[str, Any]:
    """Fit the two-stage pipeline on ``rows`` (path, label), score, save into ``out``, load,
    score again; what a test compares, as JSON-ready values."""
    images = spark.createDataFrame([tuple(r) for r in rows], "path string, label string")
    pipeline = Pipeline(
        stages=[
            pool3.ImageFeaturizer(outputCol="vec", precision="float32"),
            pool3.SVMClassifier(featuresCol="vec", seed=7, topK=2),
        ]
    )
    fitted = pipeline.fit(images)
    before = scored(fitted.transform(images))
    fitted.write().overwrite().save(f"{out}/pipeline")
    loaded = PipelineModel.load(f"{out}/pipeline")
    after = scored(loaded.transform(images))
    model, again = fitted.stages[-1], loaded.stages[-1]
    try:
        again.write_report(f"{out}/loaded-report")
        loaded_report = "written"
    except InputError as err:
        loaded_report = str(err)
    model.write_report(f"{out}/report")
    return {
        "connect": type(spark).__module__.startswith("pyspark.sql.connect"),
        "stages": [type(s).__name__ for s in loaded.stages],
        "params": {p.name: again.getOrDefault(p) for p in again.params},
        "uid_kept": again.uid == model.uid,
        "accuracy": model.metrics["accuracy"],
        "loaded_accuracy": again.metrics.get("accuracy"),
        "test_paths": sorted(str(p) for p in model.pool3_model.result.paths_test),
        "coef_equal": bool(np.array_equal(model.classifier.coef, again.classifier.coef)),
        "before": before,
        "after": after,
        "loaded_report": loaded_report,
        "report": sorted(p.name for p in Path(out, "report").iterdir()),
    }


def main(out: str, kind: str, url: str) -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("pool3-estimator-pipeline")
    if kind == "--remote":
        spark = builder.remote(url).getOrCreate()
    else:
        spark = builder.master(url).config("spark.ui.enabled", "false").getOrCreate()
    rows = json.loads(Path(out, "images.json").read_text())
    result = fit_save_load(spark, rows, out)
    Path(out, "result.json").write_text(json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
