"""Run README's API example (the code block after ``<!-- api-example``) on one session kind.

``python api_example.py OUT --master local[2]`` (Spark Classic) or ``--remote sc://HOST:PORT``
(Spark Connect; this process then starts no JVM). Runs from the repository root (the example
reads ``data/fashion-mnist-sample``), with ``spark`` and ``out`` set as README says, then
writes what the test compares into ``OUT/result.json`` and ``OUT/features.npy`` (the
features sorted by path).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
from pyspark.sql import SparkSession


def example_code(readme: Path) -> str:
    text = readme.read_text()
    match = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    if match is None:
        raise SystemExit(f"no api-example block in {readme}")
    return match.group(1)


def _jvm_started() -> bool:
    """Whether this process launched a JVM (a py4j gateway), as Spark Classic does."""
    from pyspark import SparkContext

    return SparkContext._gateway is not None


def main(out: str, kind: str, url: str) -> None:
    # a notebook's kernel: its own Python for the workers (Spark runs python3 from PATH)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("pool3-api-example")
    if kind == "--remote":
        spark = builder.remote(url).getOrCreate()
    else:
        spark = (
            builder.master(url)
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.python.worker.reuse", "true")
            .getOrCreate()
        )
    scope = {"spark": spark, "out": out}
    exec(compile(example_code(Path("README.md")), "README.md api-example", "exec"), scope)
    features, predictions, table = scope["features"], scope["predictions"], scope["table"]
    model, again = scope["model"], scope["again"]
    rows = features.select("path", "features", "error", "precision").orderBy("path").collect()
    feats = np.stack([np.asarray(r["features"], np.float32) for r in rows if r["features"]])
    np.save(f"{out}/features.npy", feats)
    table_rows = table.select("path", "features").orderBy("path").collect()
    table_feats = np.stack([np.asarray(r["features"], np.float32) for r in table_rows])
    preds = predictions.select("path", "predicted", "error").orderBy("path").collect()
    result = {
        "connect": type(spark).__module__.startswith("pyspark.sql.connect"),
        "jvm": _jvm_started(),
        "images": scope["images"].count(),
        "feature_rows": len(rows),
        "feature_columns": features.columns,
        "errors": sum(r["error"] is not None for r in rows),
        "precision": sorted({r["precision"] for r in rows}),
        "accuracy": model.metrics["accuracy"],
        "n_test": model.metrics["run"]["test_images"],
        "test_paths": sorted(str(p) for p in model.result.paths_test),
        "prediction_rows": len(preds),
        "prediction_columns": predictions.columns,
        "predicted": {r["path"]: r["predicted"] for r in preds},
        "loaded_equal": bool(
            np.array_equal(again.classifier.coef, model.classifier.coef)
            and again.metrics.get("accuracy") is None
            and again.classes == model.classes
        ),
        "pipeline_rows": len(table_rows),
        "pipeline_max_diff": float(np.abs(table_feats - feats).max()),
        "report": sorted(p.name for p in Path(out, "report").iterdir()),
    }
    Path(out, "result.json").write_text(json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
