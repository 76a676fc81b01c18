"""A notebook's session whose Python workers may lack pool3 (tests/test_workers.py).

A Jupyter kernel that is a virtual environment's Python runs without that environment on
``PATH``; the session it builds runs its Python workers on ``python3`` from ``PATH``. This
app builds its session as a notebook does (``SparkSession.builder``, not pool3's
``build_session``), calls :func:`pool3.with_labels` twice, then, with ``--probe PYTHON``,
runs the cluster check (:func:`pool3.workers.check_worker_python` with ``local=False``) with
each ``PYTHON`` as the workers' interpreter. One JSON object on the last line of stdout.

    python tests/apps/venv_kernel.py [--master URL] [--probe PYTHON ...]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pyspark.sql import SparkSession

import pool3
from pool3.connect import workers_are_local
from pool3.errors import Pool3Error
from pool3.workers import check_worker_python


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", default="local[1]")
    parser.add_argument("--probe", action="append", default=[])
    args = parser.parse_args()
    spark = SparkSession.builder.master(args.master).getOrCreate()
    sc = spark.sparkContext
    report: dict[str, Any] = {"before": sc.pythonExec, "local_before": workers_are_local(spark)}
    df = spark.createDataFrame([("/x/shirt_1.png",), ("/x/bag_2.png",)], "path string")
    try:
        report["labels"] = [
            sorted(row["label"] for row in pool3.with_labels(df).collect()) for _ in range(2)
        ]
    except Pool3Error as err:
        report["error"] = {"type": type(err).__name__, "message": str(err)}
    report["after"] = sc.pythonExec
    report["local_after"] = workers_are_local(spark)
    report["probes"] = {}
    for python in args.probe:
        sc.pythonExec = python
        try:
            check_worker_python(sc, local=False)
            report["probes"][python] = "ok"
        except Pool3Error as err:
            report["probes"][python] = f"{type(err).__name__}: {err}"
    spark.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
