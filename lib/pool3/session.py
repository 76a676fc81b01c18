"""The one place that builds the SparkSession; everything else receives it.

:func:`build_session` applies :func:`pool3.spark_settings.session_conf` (the Arrow batch size
from a worker's memory, ...) and, for a driver JVM it starts itself, the options of
:mod:`pool3.jvm` (Java checked first); over Spark Connect it is a client of the server
(:mod:`pool3.connect`). :func:`stop_session` and :func:`close_gateway` end a run without
Spark's idle waits (:mod:`pool3.spark_internals`, ``spark.internals``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

from pyspark.sql import SparkSession

from pool3 import spark_internals
from pool3.config import Config
from pool3.connect import apply_remote_conf, is_connect, remote_url, ship_code
from pool3.jvm import (
    check_java,
    with_daemon_module,
    with_jvm_archive,
    with_quick_jit,
    with_quiet_driver_log,
)
from pool3.spark_settings import records_per_batch, session_conf, set_worker_python

#: records_per_batch and check_java are also imported from here (bench/, commands/setup)
__all__ = ["build_session", "check_java", "close_gateway", "records_per_batch", "stop_session"]

logger = logging.getLogger(__name__)


def _connect(config: Config, url: str, app_name: str | None) -> SparkSession:
    """A Spark Connect session on ``url``: no Java, no JVM in this process."""
    conf = session_conf(config, app_name=app_name)
    spark = SparkSession.builder.remote(url).getOrCreate()
    bound_retries(spark, config.spark.remote_timeout_seconds)
    differ = apply_remote_conf(spark, conf)
    if differ:
        logger.warning(
            "Spark Connect server %s keeps its own static settings: %s; start the server with "
            "these --conf values (spark.python.worker.reuse=true, spark.task.cpus and the "
            "executors' environment matter for speed, not for results)",
            url,
            ", ".join(differ),
        )
    logger.info("Spark %s session over Spark Connect at %s", spark.version, url)
    ship_code(spark)
    return spark


def bound_retries(spark: SparkSession, timeout_s: float) -> None:
    """Retry a Spark Connect server that stopped answering for about ``timeout_s`` seconds
    in all, not Spark's default 10 minutes: then the call fails with gRPC UNAVAILABLE, which
    :func:`pool3.errors.as_resource_error` names (exit 8) and the run aborts its output.

    The bound is per outage, not per call (:func:`_outage_policy`): the calls that follow the
    failing one (the abort's) fail at once instead of waiting the bound again."""
    spark.client.set_retry_policies([_outage_policy(timeout_s)])


def _outage_policy(timeout_s: float) -> Any:
    """A retry policy bounded per outage; pyspark's Connect client is imported only here."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    class OutageBound(DefaultPolicy):
        """Spark's default retry policy (what it retries, its backoff), bounded by time:
        an outage starts at the first retried error after :data:`QUIET_S` without one, and
        no call is retried once it has lasted ``timeout_s``."""

        QUIET_S = 10.0  # twice the longest backoff: retries of one outage come closer

        def __init__(self, timeout_s: float) -> None:
            super().__init__(
                max_retries=None, max_backoff=5000, jitter=0, max_server_retry_delay=5000
            )
            self.timeout_s = timeout_s
            self._since: float | None = None
            self._last = 0.0

        def can_retry(self, e: BaseException) -> bool:
            if not super().can_retry(e):
                return False
            now = time.monotonic()
            if self._since is None or now - self._last > self.QUIET_S:
                self._since = now
            self._last = now
            return now - self._since < self.timeout_s

    return OutageBound(timeout_s)


def _quiet_hidden_path_warning(spark: SparkSession) -> None:
    """Silence DataSource's "All paths were ignored" for our hidden staging directories.

    pool3 reads back its own staging output (a dot-directory, so that readers of the parent
    skip it); Spark reads it correctly but warns as if nothing had been read. Likewise
    FileStreamSink's metadata probe prints a stack trace for an output under a folder with
    glob characters (``fm [2019]``), which pool3 reads glob-escaped; the read is correct.
    """
    jvm = spark_internals.driver_jvm(spark.sparkContext)
    if jvm is None:
        return
    log4j = jvm.org.apache.logging.log4j
    for name in (
        "org.apache.spark.sql.execution.datasources.DataSource",
        "org.apache.spark.sql.execution.streaming.sinks.FileStreamSink",
    ):
        log4j.core.config.Configurator.setLevel(name, log4j.Level.ERROR)


def build_session(
    config: Config, *, app_name: str | None = None, quick_jit: bool = False
) -> SparkSession:
    """Build (or get) the SparkSession for a run, configured from ``config``.

    Parameters
    ----------
    config : Config
        Resolved configuration; see :func:`session_conf` for the settings applied.
    app_name : str, optional
        Overrides ``config.spark.app_name`` (e.g. ``"pool3-featurize"``).
    quick_jit : bool
        A driver JVM started here compiles with C1 only (:func:`with_quick_jit`), if
        ``spark.quick_jit`` allows: for commands whose JVM mostly waits for Python workers.

    With a Spark Connect URL (:func:`remote_url`) the session is a Connect client: no Java
    is needed and no JVM starts here; the static settings are the server's
    (:func:`apply_remote_conf`).

    Raises
    ------
    ConfigError
        Java missing or too old (checked before the JVM starts).
    """
    spark_internals.set_enabled(config.spark.internals)
    url = remote_url(config)
    if url:
        return _connect(config, url, app_name)
    java = check_java()
    set_worker_python(os.environ)
    if SparkSession.getActiveSession() is not None:
        logger.warning(
            "a Spark session already exists: static settings (master, task.cpus, ...) of this "
            "config are not applied; runtime SQL settings are"
        )
    builder = SparkSession.builder
    conf = with_quiet_driver_log(session_conf(config, app_name=app_name), tty=sys.stderr.isatty())
    conf = with_jvm_archive(conf, java, home=config.model.home or None)
    if quick_jit and config.spark.quick_jit:
        conf = with_quick_jit(conf)
    conf = with_daemon_module(conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(config.spark.log_level)
    _quiet_hidden_path_warning(spark)
    logger.info(
        "Spark %s session %r: master %s, UI %s",
        spark.version,
        spark.sparkContext.appName,
        spark.sparkContext.master,
        spark.sparkContext.uiWebUrl or "disabled",
    )
    return spark


def stop_session(spark: SparkSession) -> None:
    """``spark.stop()``, without waiting for pyspark's accumulator server to notice.

    On Spark Classic, pyspark shuts its accumulator server down after the JVM, and that
    server's handler looks for the shutdown only once a second: ~0.85 s at the end of every
    run (measured in ``spark.stop()`` on 2 cores), for a server pool3 never uses (Spark
    Connect has no accumulators). Here the session and the JVM are stopped as
    ``spark.stop()`` does, and the server is shut down in a daemon thread; a process that
    exits does not wait for it. Spark Connect: ``spark.stop()``.
    """
    server = (
        None if is_connect(spark) else spark_internals.detach_accumulator_server(spark.sparkContext)
    )
    try:
        spark.stop()
    finally:
        if server is not None:
            threading.Thread(
                target=server.shutdown, name="pool3-accumulator-stop", daemon=True
            ).start()


def close_gateway() -> None:
    """Close py4j's gateway in the driver JVM this process started; call just before exiting.

    That JVM exits when this process ends (its stdin closes), but HotSpot's exit first waits
    up to 0.3 s for threads blocked in native code, such as the gateway server's accept; a
    caller reading the command's output through a pipe waits for the JVM too (measured: the
    pipe closed 0.41 s after the process, 0.07-0.09 s with the gateway closed). No JVM call
    works afterwards. Nothing for a JVM ``spark-submit`` started, nor over Spark Connect. Frees
    queued for py4j's garbage-collection thread are dropped first (none needed at exit).
    """
    try:
        spark_internals.shut_down_gateway()
    except Exception as err:  # a JVM already gone: nothing to close
        logger.debug("closing the py4j gateway: %s", err)
