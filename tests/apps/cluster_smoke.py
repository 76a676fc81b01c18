"""Smoke application for spark-submit.sh: where does ``pool3`` come from on executors?

Run through ``./spark-submit.sh [--master URL] --app tests/apps/cluster_smoke.py --
[--exit-code N]``. The master is never set here: spark-submit provides it. Each of a
few partitions imports ``pool3`` inside a Python worker and reports ``pool3.__file__``,
the worker's PID, working directory and interpreter. The driver prints one JSON
object on the last line of stdout and exits with ``--exit-code`` (default 0), so
that a test can check that spark-submit.sh returns the job's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import SparkSession


def where_is_pool3(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Import pool3 in the Python worker and report where it was found."""
    import pool3

    for batch in batches:
        yield pd.DataFrame(
            {
                "id": batch["id"],
                "pool3_file": pool3.__file__,
                "pid": os.getpid(),
                "cwd": os.getcwd(),
                "python": sys.executable,
            }
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args()

    spark = SparkSession.builder.appName("pool3-cluster-smoke").getOrCreate()
    sc = spark.sparkContext
    schema = "id long, pool3_file string, pid long, cwd string, python string"
    rows = spark.range(0, 8, numPartitions=4).mapInPandas(where_is_pool3, schema).collect()
    # The Scala status tracker lists the driver too; PySpark does not expose it.
    n_executors = len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1
    import pool3

    report = {
        "master": sc.master,
        "app_id": sc.applicationId,
        "n_executors": n_executors,
        "driver_pool3_file": pool3.__file__,
        "rows": [row.asDict() for row in rows],
    }
    spark.stop()
    print(json.dumps(report), flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
