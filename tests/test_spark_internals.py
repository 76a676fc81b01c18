"""pool3.spark_internals: the installed pyspark has every private name pool3 uses, and each
accessor falls back to Spark's own behaviour when its name is gone or internals are off.

The first tests fail loudly after a pyspark / py4j upgrade that drops a name; the others
take real pyspark objects with the name removed (``monkeypatch.delattr``) or plain objects
that never had it.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import py4j
import pytest
from py4j.protocol import Py4JNetworkError
from pyspark import SparkContext
from pyspark.sql import SparkSession

from clirun import fresh_python
from pool3 import spark_internals
from pool3.errors import as_resource_error
from pool3.jvm import daemon_module


@pytest.fixture(autouse=True)
def _internals_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with internals on, and whatever it sets is undone after it."""
    monkeypatch.setattr(spark_internals, "_enabled", True)


def test_the_installed_pyspark_has_every_name_pool3_expects() -> None:
    assert spark_internals.expected() == []


def test_a_running_context_has_every_name_pool3_expects(spark: SparkSession) -> None:
    assert spark_internals.expected(spark.sparkContext) == []
    assert spark_internals.driver_jvm(spark.sparkContext) is not None
    assert spark_internals.launched_gateway() is not None
    assert spark_internals.jvm_started()


def test_expected_names_what_a_pyspark_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(SparkContext, "_gateway")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    missing = spark_internals.expected()
    assert "pyspark.SparkContext._gateway" in missing
    assert "pyspark has no pyspark.daemon" in missing
    assert any("_accumulatorServer" in m for m in spark_internals.expected(object()))


def test_driver_jvm_falls_back_to_none(spark: SparkSession) -> None:
    assert spark_internals.driver_jvm(object()) is None  # no _jvm: Spark's warnings show
    spark_internals.set_enabled(False)
    assert spark_internals.driver_jvm(spark.sparkContext) is None


def test_the_accumulator_server_is_detached_only_where_it_can_be_shut_down() -> None:
    server = types.SimpleNamespace(shutdown=lambda: None)
    context = types.SimpleNamespace(_accumulatorServer=server)
    assert spark_internals.detach_accumulator_server(context) is server
    assert context._accumulatorServer is None  # pyspark's stop() skips it
    assert spark_internals.detach_accumulator_server(object()) is None
    odd = types.SimpleNamespace(_accumulatorServer=object())  # no shutdown: left in place
    assert spark_internals.detach_accumulator_server(odd) is None
    assert odd._accumulatorServer is not None
    spark_internals.set_enabled(False)
    context = types.SimpleNamespace(_accumulatorServer=server)
    assert spark_internals.detach_accumulator_server(context) is None
    assert context._accumulatorServer is server


def test_without_the_gateway_name_nothing_is_closed_and_a_session_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.delattr(SparkContext, "_gateway")
    assert spark_internals.launched_gateway(load=True) is None
    assert spark_internals.shut_down_gateway() is False
    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    assert spark_internals.jvm_started() is False  # the public fallback
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")  # spark-submit started the JVM
    assert spark_internals.jvm_started() is True


def test_a_gateway_without_proc_or_finalizer_deque(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SparkContext, "_gateway", types.SimpleNamespace())  # not launched here
    assert spark_internals.launched_gateway() is None
    closed = []
    gateway = types.SimpleNamespace(proc=object(), shutdown=lambda: closed.append(1))
    monkeypatch.setattr(SparkContext, "_gateway", gateway)  # no _gateway_client
    assert spark_internals.shut_down_gateway() is True
    assert closed == [1]
    spark_internals.set_enabled(False)
    assert spark_internals.shut_down_gateway() is False
    assert closed == [1]


def test_clear_job_group_on_a_real_context_and_where_clearjobgroup_exists(
    spark: SparkSession,
) -> None:
    context = spark.sparkContext
    context.setJobGroup("pool3-test", "a test", interruptOnCancel=True)
    assert context.getLocalProperty("spark.jobGroup.id") == "pool3-test"
    spark_internals.clear_job_group(context)  # pyspark 4.3: no clearJobGroup
    assert context.getLocalProperty("spark.jobGroup.id") is None
    called = []
    spark_internals.clear_job_group(types.SimpleNamespace(clearJobGroup=lambda: called.append(1)))
    assert called == [1]


def test_py4j_errors_are_recognised_whatever_the_setting() -> None:
    spark_internals.set_enabled(False)
    assert spark_internals.py4j_network_error(Py4JNetworkError("gone"))
    assert not spark_internals.py4j_network_error(ConnectionError("other"))
    assert spark_internals.py4j_file(py4j.__file__)
    assert not spark_internals.py4j_file(__file__)
    found = as_resource_error(Py4JNetworkError("Answer from Java side is empty"), "testing")
    assert found is not None and "connection to Spark's JVM was lost" in str(found)


def test_the_daemon_swap_falls_back_when_its_assumptions_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    assert spark_internals.daemon_unusable() is None  # this pyspark, as pool3.daemon expects
    spark_internals.set_enabled(False)
    assert spark_internals.daemon_unusable() == "spark.internals is off"
    spark_internals.set_enabled(True)
    fake = tmp_path / "daemon.py"
    fake.write_text("def manager():\n    pass\n")  # a daemon that reads no sys.argv
    spec = importlib.util.spec_from_file_location("pyspark.daemon", fake)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    assert "sys.argv" in (spark_internals.daemon_unusable() or "")
    monkeypatch.setattr(daemon_module, "pool3_starts_jvm", lambda: True)
    conf = {"spark.master": "local[2]"}
    assert daemon_module.with_daemon_module(conf, {}) == conf  # Spark's own daemon


@pytest.mark.spark
def test_a_session_with_internals_off_runs_and_stops() -> None:
    """``spark.internals = false`` in a fresh process: no daemon swap, Python jobs run, the
    session stops (waiting for the accumulator server) and the gateway is left open."""
    script = (
        "from pool3.config import load_config\n"
        "from pool3.session import build_session, close_gateway, stop_session\n"
        "c = load_config('local', overrides={'spark.master': 'local[1]', "
        "'spark.internals': False, 'spark.extra': {'spark.ui.enabled': 'false'}})\n"
        "s = build_session(c)\n"
        "print('DAEMON', s.sparkContext.getConf().get('spark.python.daemon.module'))\n"
        "print('SUM', s.sparkContext.parallelize(range(10), 2).map(lambda x: x * 2).sum())\n"
        "stop_session(s)\n"
        "close_gateway()\n"
    )
    out = fresh_python(script)
    assert "DAEMON None" in out
    assert "SUM 90" in out


@pytest.mark.slow
@pytest.mark.spark
def test_the_archive_child_without_the_gateway_still_leaves_its_archive(tmp_path) -> None:
    """Internals off, the class-data archive's child (:func:`pool3.jvm.archive.train`) cannot
    close its JVM's stdin: the JVM exits with the child, and a parent reading the child's
    output (as ``build_archive`` does) finds the archive written once the pipes close."""
    archive = tmp_path / "a.jsa"
    script = (
        "import sys\n"
        "from pool3 import spark_internals\n"
        "from pool3.jvm.archive import train\n"
        "spark_internals.set_enabled(False)\n"
        "train(sys.argv[1])\n"
    )
    fresh_python(script, str(archive), env={"PYSPARK_PYTHON": sys.executable})
    assert archive.is_file() and archive.stat().st_size > 0
