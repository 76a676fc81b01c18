"""pool3.session: batch sizing, Java check, the settings applied to the real session."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from clirun import fresh_python
from pool3.config import Config, load_config
from pool3.errors import ConfigError
from pool3.jvm import check_java, parse_java_version
from pool3.session import build_session
from pool3.spark_settings import (
    BATCH_MEMORY_FRACTION,
    DECODED_IMAGE_MB,
    MAX_RECORDS,
    MIN_RECORDS,
    records_per_batch,
    session_conf,
    set_worker_python,
)


@pytest.mark.parametrize("memory_mb", [256, 1024, 2048, 6144, 16384])
def test_records_per_batch_fits_a_fraction_of_worker_memory(memory_mb: int) -> None:
    records = records_per_batch(memory_mb, 0)
    assert MIN_RECORDS <= records <= MAX_RECORDS
    # One batch's decoded 299x299x3 float32 images stay within the budget.
    assert records * DECODED_IMAGE_MB <= memory_mb * BATCH_MEMORY_FRACTION
    assert records_per_batch(memory_mb * 2, 0) > records  # more memory, bigger batches


def test_records_per_batch_bounds_and_model_batches() -> None:
    assert records_per_batch(64, 0) == MIN_RECORDS
    assert records_per_batch(10_000_000, 0) == MAX_RECORDS
    assert records_per_batch(2048, 64) % 64 == 0
    assert records_per_batch(2048, 100) % 100 == 0
    assert records_per_batch(2048, 64) <= records_per_batch(2048, 0)
    for memory_mb in (256, 1024, 2048, 6144):  # whole automatic model batches (4 or 16)
        assert records_per_batch(memory_mb, 0) % 16 == 0
    assert records_per_batch(2048, 4000) == 4000  # an explicit batch size is honoured
    for bad in [(0, 0), (-5, 0), (2048, -1)]:
        with pytest.raises(ConfigError):
            records_per_batch(*bad)


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19 LTS', 21),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ("no version here", None),
    ],
)
def test_parse_java_version(text: str, major: int | None) -> None:
    assert parse_java_version(text) == major


@pytest.mark.spark  # this machine's java
def test_check_java_accepts_this_machine_and_explains_a_missing_java(tmp_path: Path) -> None:
    check_java()  # Java 17 is installed here
    with pytest.raises(ConfigError, match="openjdk-17-jre-headless"):
        check_java(env={"JAVA_HOME": str(tmp_path / "no-jdk"), "PATH": os.environ["PATH"]})
    with pytest.raises(ConfigError, match="no java executable found"):
        check_java(env={"PATH": str(tmp_path)})


def test_set_worker_python_fills_only_unset_variables() -> None:
    environ: dict[str, str] = {}
    set_worker_python(environ)
    assert environ == {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    preset = {"PYSPARK_PYTHON": "/opt/py/bin/python3"}
    set_worker_python(preset)
    assert preset["PYSPARK_PYTHON"] == "/opt/py/bin/python3"
    assert preset["PYSPARK_DRIVER_PYTHON"] == sys.executable


def test_session_conf_master_only_when_given_and_extra_last() -> None:
    without = session_conf(load_config(env={}))
    assert "spark.master" not in without
    assert without["spark.app.name"] == "pool3"
    overrides = {
        "spark.master": "local[1]",
        "spark.extra.spark.sql.execution.arrow.maxRecordsPerBatch": "7",
    }
    conf = session_conf(load_config(overrides=overrides, env={}), app_name="pool3-x")
    assert conf["spark.master"] == "local[1]" and conf["spark.app.name"] == "pool3-x"
    assert conf["spark.sql.execution.arrow.maxRecordsPerBatch"] == "7"


def test_real_session_has_pool3_settings(spark: SparkSession, spark_config: Config) -> None:
    expected = {
        "spark.master": "local[2]",
        "spark.task.cpus": "1",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(
            records_per_batch(spark_config.featurize.worker_memory_mb, 0)
        ),
        "spark.python.worker.reuse": "true",
        "spark.sql.parquet.compression.codec": "snappy",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.sql.shuffle.partitions": "2",
    }
    assert {key: spark.conf.get(key) for key in expected} == expected
    assert os.environ.get("PYSPARK_PYTHON")  # set by build_session when it was unset


def test_python_workers_run_the_driver_interpreter(spark: SparkSession) -> None:
    executables = (
        spark.sparkContext.parallelize(range(2), 2)
        .map(lambda _: __import__("sys").executable)
        .collect()
    )
    assert executables == [os.environ["PYSPARK_PYTHON"]] * 2


def test_build_session_again_reuses_it_and_logs_master(
    spark: SparkSession, spark_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pool3.session"):
        again = build_session(spark_config)
    assert again is spark
    messages = [r.getMessage() for r in caplog.records if r.name == "pool3.session"]
    assert any("already exists" in m for m in messages)
    assert any("master local[2]" in m and "UI disabled" in m for m in messages)


def test_driver_console_is_quiet_and_the_progress_bar_only_on_a_terminal(monkeypatch):
    from pyspark import SparkContext

    from pool3.jvm import LOG4J2_FILE, with_quiet_driver_log

    assert LOG4J2_FILE.is_file()
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(SparkContext, "_gateway", None)  # as before pool3 starts the JVM
    conf = {"spark.ui.showConsoleProgress": "true", "spark.driver.extraJavaOptions": "-Xss4m"}
    quiet = with_quiet_driver_log(conf, tty=False)
    assert quiet["spark.ui.showConsoleProgress"] == "false"
    assert quiet["spark.driver.extraJavaOptions"] == (
        f"-Xss4m -Dlog4j2.configurationFile={LOG4J2_FILE.as_uri()}"
    )
    assert with_quiet_driver_log(conf, tty=True)["spark.ui.showConsoleProgress"] == "true"
    own = {"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=file:/etc/mine"}
    assert with_quiet_driver_log(own) == own  # the user's log4j set-up wins
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")  # spark-submit started the JVM
    assert "spark.driver.extraJavaOptions" not in with_quiet_driver_log({})


def test_quick_jit_only_for_a_jvm_pool3_starts_and_without_a_jit_option(monkeypatch):
    from pyspark import SparkContext

    from pool3.jvm import QUICK_JIT, with_quick_jit

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(SparkContext, "_gateway", None)  # as before pool3 starts the JVM
    conf = {"spark.driver.extraJavaOptions": "-Xss4m"}
    assert with_quick_jit(conf)["spark.driver.extraJavaOptions"] == f"-Xss4m {QUICK_JIT}"
    assert with_quick_jit({})["spark.driver.extraJavaOptions"] == QUICK_JIT
    own = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=4"}
    assert with_quick_jit(own) == own  # the user's JIT choice wins
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")  # spark-submit started the JVM
    assert with_quick_jit(conf) == conf


@pytest.mark.spark  # a driver JVM in a fresh interpreter
def test_a_featurize_session_runs_its_jvm_with_c1_only_unless_turned_off():
    """A real driver JVM started by pool3 in a child process: its own input arguments."""
    script = (
        "import sys\n"
        "from pool3.config import load_config\n"
        "from pool3.session import build_session\n"
        "c = load_config('local', overrides={'spark.master': 'local[1]', "
        "'spark.quick_jit': sys.argv[1], 'spark.extra': {'spark.ui.enabled': 'false'}})\n"
        "s = build_session(c, quick_jit=True)\n"
        "bean = s.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()\n"
        "print('ARGS', ' '.join(bean.getInputArguments()))\n"
        "print('ROWS', s.range(10).count())\n"
        "s.stop()\n"
    )
    for setting, expected in (("true", True), ("false", False)):
        out = fresh_python(script, setting).splitlines()
        args = next(line for line in out if line.startswith("ARGS"))
        assert ("-XX:TieredStopAtLevel=1" in args.split()) is expected, args
        assert "ROWS 10" in out


@pytest.mark.spark  # a driver JVM in a fresh interpreter
def test_stop_session_stops_spark_and_leaves_the_accumulator_server_to_a_thread():
    """A real session in a child process: after a Python job (the JVM then holds a connection
    to pyspark's accumulator server), stop_session stops the context, the server closes in
    its thread, and a new session runs a Python job."""
    script = (
        "import threading, time\n"
        "from pyspark import SparkContext\n"
        "from pool3.config import load_config\n"
        "from pool3.session import build_session, stop_session\n"
        "c = load_config('local', overrides={'spark.master': 'local[1]', "
        "'spark.extra': {'spark.ui.enabled': 'false'}})\n"
        "s = build_session(c)\n"
        "print('SUM', s.sparkContext.parallelize(range(10), 2).map(lambda x: x * 2).sum())\n"
        "server = s.sparkContext._accumulatorServer\n"
        "stop_session(s)\n"
        "print('ACTIVE', SparkContext._active_spark_context is not None)\n"
        "stopper = [t for t in threading.enumerate() if t.name == 'pool3-accumulator-stop']\n"
        "print('STOPPER', len(stopper))\n"
        "for t in stopper:\n"
        "    t.join(10)\n"
        "print('CLOSED', server.socket.fileno() == -1, server.server_shutdown)\n"
        "s = build_session(c)\n"
        "print('AGAIN', s.sparkContext.parallelize(range(4), 2).map(lambda x: x + 1).sum())\n"
        "stop_session(s)\n"
    )
    out = fresh_python(script).splitlines()
    assert "SUM 90" in out and "ACTIVE False" in out and "STOPPER 1" in out, out
    assert "CLOSED True True" in out and "AGAIN 10" in out, out


@pytest.mark.spark  # a driver JVM in a fresh interpreter
def test_close_gateway_lets_the_driver_jvm_exit_with_the_process():
    """A real session in a child process: after stop_session and close_gateway, the JVM's
    gateway takes no more connections, and the JVM exits (status 0) once its stdin closes
    (as at the process's end); before any session close_gateway does nothing."""
    script = (
        "from pyspark import SparkContext\n"
        "from pool3.config import load_config\n"
        "from pool3.session import build_session, close_gateway, stop_session\n"
        "close_gateway()\n"
        "c = load_config('local', overrides={'spark.master': 'local[1]', "
        "'spark.extra': {'spark.ui.enabled': 'false'}})\n"
        "s = build_session(c)\n"
        "print('SUM', s.sparkContext.parallelize(range(10), 2).map(lambda x: x * 2).sum())\n"
        "gateway = SparkContext._gateway\n"
        "stop_session(s)\n"
        "close_gateway()\n"
        "import socket, time\n"
        "for _ in range(100):  # the JVM closes its server socket in its own thread\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', gateway.java_parameters.port)).close()\n"
        "    except OSError as err:\n"
        "        print('CALL refused', type(err).__name__)\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "gateway.proc.stdin.close()\n"
        "print('JVM EXIT', gateway.proc.wait(timeout=120))\n"
    )
    out = fresh_python(script).splitlines()
    assert "SUM 90" in out and "JVM EXIT 0" in out, out
    assert any(line.startswith("CALL refused") for line in out), out
