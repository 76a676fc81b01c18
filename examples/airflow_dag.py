"""Example Airflow DAG: nightly pool3 featurize -> train with ``SparkSubmitOperator``.

Not part of the package and never imported by the tests or CI (Airflow is not a pool3
dependency). Copy it to your ``dags/`` folder and change the paths at the top.

The commands are the ones tests/test_cluster_pipeline.py submits to a real standalone
cluster through ``spark-submit.sh``: the same application (``jobs/pool3_job.py``), the
same ``--py-files build/pool3.zip``, the same profile passed as ``--files`` and as
``--conf`` right after the subcommand, and the same pool3 arguments (FEATURIZE_ARGS and
TRAIN_ARGS below; ``test_airflow_dag_mirrors_the_tested_commands`` parses this file and
fails if they drift apart). SparkSubmitOperator runs ``spark-submit`` itself, so it does
what spark-submit.sh does except packaging: build the zip on deploy with

    ./spark-submit.sh --dry-run -- featurize --input x --output y    # writes build/pool3.zip

(``--deps venv`` in spark-submit.sh shows how to ship a packed venv with ``archives=``;
see docs/cluster.md). The master comes from the Airflow connection ``spark_default``
(host ``spark://spark-master``, port ``7077``; or ``yarn``, ``k8s://...``).

``--run-id {{ ds }}`` makes each day's output ``.../run_id=<YYYY-MM-DD>``: clearing and
re-running a day replaces exactly that day's output, and a run that failed halfway needs
no clean-up (nothing is visible before ``_SUCCESS``; leftovers are removed by the next
run). A non-zero exit code (see examples/README.md) fails the task.
"""

from __future__ import annotations

import pendulum
from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

POOL3 = "/opt/pool3"  # a checkout of this repository, with build/pool3.zip built
PYTHON = "/opt/pool3-env/bin/python"  # the same path on every node (docs/cluster.md)
PROFILE = "/etc/pool3/nightly.toml"  # max_error_rate, test_size, min_accuracy, ...
DATA = "hdfs:///data/pool3"  # any URI every node reaches: hdfs://, s3a://, a shared mount

# The pool3 arguments, with "--conf PROFILE" where `spark-submit.sh --conf-profile PROFILE`
# puts it. Images and features must be readable by every executor; the model directory
# is written by the driver through the same Hadoop FileSystem, so it lands where DATA
# says in client and cluster mode alike. A retry that starts while the first attempt still
# runs exits 4 (the output is owned by that attempt; docs/cluster.md, "Who owns an output").
FEATURIZE_ARGS = [
    "featurize",
    "--conf",
    PROFILE,
    "--input",
    DATA + "/images/{{ ds }}",
    "--output",
    DATA + "/features",
    "--run-id",
    "{{ ds }}",
]
TRAIN_ARGS = [
    "train",
    "--conf",
    PROFILE,
    "--features",
    DATA + "/features/run_id={{ ds }}",
    "--output",
    DATA + "/models",
    "--run-id",
    "{{ ds }}",
]

COMMON = {
    "conn_id": "spark_default",
    "application": f"{POOL3}/jobs/pool3_job.py",
    "py_files": f"{POOL3}/build/pool3.zip",
    "files": PROFILE,
    # spark-submit.sh exports PYSPARK_PYTHON for the driver and the executors.
    "env_vars": {"PYSPARK_PYTHON": PYTHON},
    "verbose": False,
    # No `name`: pool3 names its applications pool3-featurize, pool3-train.
}

with DAG(
    dag_id="pool3_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 5, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=10)},
    tags=["pool3", "spark"],
) as dag:
    featurize = SparkSubmitOperator(
        task_id="featurize",
        application_args=FEATURIZE_ARGS,
        **COMMON,
    )
    train = SparkSubmitOperator(
        task_id="train",
        application_args=TRAIN_ARGS,
        **COMMON,
    )
    featurize >> train
