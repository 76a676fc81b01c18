"""The one place that builds the SparkSession; everything else receives it.

Memory model behind ``spark.sql.execution.arrow.maxRecordsPerBatch``
---------------------------------------------------------------------
The featurize UDF receives Arrow batches of rows holding the *encoded* image bytes
(typically 20 KB - 1 MB, at most ``featurize.max_file_mb``) and decodes each to a
299 x 299 x 3 float32 array: 299 * 299 * 3 * 4 B = 1,072,812 B, about 1.07 MB. While a batch
is processed a Python worker holds its raw bytes (Arrow buffer) and its decoded arrays, so we
count ``RECORD_MB`` (about 2.1 MB) per row, and let one Arrow batch use at most
``BATCH_MEMORY_FRACTION`` (a quarter) of ``featurize.worker_memory_mb``; the rest is for the
TensorFlow runtime and weights (about 0.5-1 GB), the model's activations for one model batch,
and pandas/Arrow copies. Smaller batches cost little (the JVM <-> Python hop is cheap next to
Inception-v3 inference) and keep a worker from being killed for memory.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from pyspark.sql import SparkSession

from pool3.config import Config
from pool3.connect import apply_remote_conf, is_connect, remote_url, ship_code
from pool3.errors import ConfigError
from pool3.jvm import pool3_starts_jvm, with_daemon_module, with_jvm_archive, with_quick_jit

logger = logging.getLogger(__name__)

DECODED_IMAGE_MB = 299 * 299 * 3 * 4 / 1e6  # one float32 input image, ~1.07 MB
RAW_IMAGE_MB = 1.0  # allowance for the encoded bytes of one image
RECORD_MB = DECODED_IMAGE_MB + RAW_IMAGE_MB
BATCH_MEMORY_FRACTION = 0.25
MIN_RECORDS, MAX_RECORDS = 8, 4096
#: every automatic model batch size divides it (``pool3.extraction.batching.auto_batch_size``)
AUTO_BATCH_MULTIPLE = 16
MIN_JAVA = 17
#: the driver's log4j2 set-up when pool3 starts the JVM (see the file)
LOG4J2_FILE = Path(__file__).with_name("log4j2.properties")
_JAVA_HINT = "pyspark 4 needs Java 17: apt-get install openjdk-17-jre-headless, or set JAVA_HOME"


def records_per_batch(worker_memory_mb: int, batch_size: int) -> int:
    """Rows per Arrow batch such that one batch's decoded images fit in a worker's budget.

    Parameters
    ----------
    worker_memory_mb : int
        Memory one Python worker may use (``featurize.worker_memory_mb``), > 0.
    batch_size : int
        Model batch size (``model.batch_size``); 0 = chosen by the model from memory.

    Returns
    -------
    int
        ``floor(worker_memory_mb * BATCH_MEMORY_FRACTION / RECORD_MB)`` clamped to
        ``[MIN_RECORDS, MAX_RECORDS]``. With ``batch_size > 0`` it is rounded
        down to a whole number of model batches, and is at least one batch: an explicit
        batch size is honoured even when it exceeds the memory estimate. With 0 it is rounded
        down to a multiple of :data:`AUTO_BATCH_MULTIPLE` (2048 MB -> 240), so that the
        automatic model batches (4, or 16 on AMX, at the default memory) fill every Arrow
        batch.
    """
    if isinstance(worker_memory_mb, bool) or worker_memory_mb <= 0:
        raise ConfigError(
            f"worker_memory_mb must be a positive number of MB, got {worker_memory_mb!r}; "
            "set featurize.worker_memory_mb"
        )
    if isinstance(batch_size, bool) or batch_size < 0:
        raise ConfigError(
            f"batch_size must be >= 0 (0 = automatic), got {batch_size!r}; set model.batch_size"
        )
    records = int(worker_memory_mb * BATCH_MEMORY_FRACTION / RECORD_MB)
    records = min(max(records, MIN_RECORDS), MAX_RECORDS)
    if batch_size:
        records = batch_size * max(1, records // batch_size)
    elif records >= AUTO_BATCH_MULTIPLE:  # whole model batches of any automatic size
        records -= records % AUTO_BATCH_MULTIPLE
    return records


def session_conf(config: Config, *, app_name: str | None = None) -> dict[str, str]:
    """The Spark settings :func:`build_session` applies, in order (``spark.extra`` last).

    ``spark.master`` is present only when ``config.spark.master`` is non-empty.
    """
    conf: dict[str, str] = {}
    if config.spark.master:
        conf["spark.master"] = config.spark.master
    conf.update(
        {
            "spark.app.name": app_name or config.spark.app_name,
            "spark.task.cpus": str(config.spark.task_cpus),
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.execution.arrow.maxRecordsPerBatch": str(
                records_per_batch(config.featurize.worker_memory_mb, config.model.batch_size)
            ),
            "spark.python.worker.reuse": "true",
            "spark.sql.parquet.compression.codec": "snappy",
            # Our commit writes _SUCCESS last, after the manifest (storage.outputs.commit_output).
            "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
            # Executors on a cluster do not inherit the driver's environment.
            "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
    )
    conf.update(config.spark.extra)
    return conf


def with_quiet_driver_log(conf: Mapping[str, str], *, tty: bool = True) -> dict[str, str]:
    """``conf`` for a console a person reads: Spark's progress bar only on a terminal
    (``tty``; in a log file its carriage returns glue it to the next line), and pool3's log4j2
    file for a driver JVM that pool3 starts itself.

    The file is used only when no JVM runs yet and none is being launched for us
    (``spark-submit`` sets ``PYSPARK_GATEWAY_PORT``), and the user's
    ``spark.driver.extraJavaOptions`` names no log4j configuration of its own; their options
    are kept, the file is appended.
    """
    conf = dict(conf)
    if not tty and conf.get("spark.ui.showConsoleProgress") == "true":
        conf["spark.ui.showConsoleProgress"] = "false"
    if not pool3_starts_jvm():
        return conf
    options = conf.get("spark.driver.extraJavaOptions", "")
    if "log4j" in options or not LOG4J2_FILE.is_file():
        return conf
    own = f"-Dlog4j2.configurationFile={LOG4J2_FILE.as_uri()}"
    return {**conf, "spark.driver.extraJavaOptions": f"{options} {own}".strip()}


def set_worker_python(environ: MutableMapping[str, str]) -> None:
    """Point ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` at ``sys.executable`` when unset.

    Python workers then import the same environment (TensorFlow, pool3) as the driver.
    Values already set are kept; on a cluster whose nodes have another Python, set
    ``PYSPARK_PYTHON`` or ``spark.pyspark.python`` explicitly (the latter wins in Spark).
    """
    environ.setdefault("PYSPARK_PYTHON", sys.executable)
    environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def parse_java_version(text: str) -> int | None:
    """Major version from ``java -version`` output (``"1.8.0_292"`` -> 8, ``"17.0.15"`` -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java(*, env: Mapping[str, str] | None = None) -> str:
    """Fail early, with a fix, if the ``java`` Spark will start is missing or older than 17;
    returns its path.

    Uses ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set (as Spark's launcher does), else
    ``java`` on ``PATH`` (both from ``env``, default ``os.environ``).

    Raises
    ------
    ConfigError
        No java, java that does not run, or a version below 17.
    """
    environ = os.environ if env is None else env
    if environ.get("JAVA_HOME"):
        java = str(Path(environ["JAVA_HOME"]) / "bin" / "java")
        where = f"JAVA_HOME={environ['JAVA_HOME']}"
    else:
        java = shutil.which("java", path=environ.get("PATH", "")) or ""
        where = "PATH"
    if not java or not Path(java).is_file():
        raise ConfigError(f"no java executable found (looked in {where}); {_JAVA_HINT}")
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"cannot run {java} -version: {err}; {_JAVA_HINT}") from err
    version = parse_java_version(result.stderr + result.stdout)
    if version is None:
        output = (result.stderr + result.stdout).strip()[:200]
        raise ConfigError(f"cannot read the Java version of {java} from {output!r}; {_JAVA_HINT}")
    if version < MIN_JAVA:
        raise ConfigError(f"{java} is Java {version}; {_JAVA_HINT}")
    return java


def _connect(config: Config, url: str, app_name: str | None) -> SparkSession:
    """A Spark Connect session on ``url``: no Java, no JVM in this process."""
    conf = session_conf(config, app_name=app_name)
    spark = SparkSession.builder.remote(url).getOrCreate()
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


def _quiet_hidden_path_warning(spark: SparkSession) -> None:
    """Silence DataSource's "All paths were ignored" for our hidden staging directories.

    pool3 reads back its own staging output (a dot-directory, so that readers of the parent
    skip it); Spark reads it correctly but warns as if nothing had been read. Likewise
    FileStreamSink's metadata probe prints a stack trace for an output under a folder with
    glob characters (``fm [2019]``), which pool3 reads glob-escaped; the read is correct.
    """
    jvm = spark.sparkContext._jvm
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
    context = None if is_connect(spark) else spark.sparkContext
    server = getattr(context, "_accumulatorServer", None)
    if callable(getattr(server, "shutdown", None)):
        context._accumulatorServer = None  # type: ignore[union-attr]  # stop() skips it
    else:
        server = None
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
    context = sys.modules.get("pyspark.core.context")
    gateway = getattr(getattr(context, "SparkContext", None), "_gateway", None)
    if gateway is None or getattr(gateway, "proc", None) is None:
        return
    getattr(gateway._gateway_client, "finalizer_deque", []).clear()
    try:
        gateway.shutdown()
    except Exception as err:  # a JVM already gone: nothing to close
        logger.debug("closing the py4j gateway: %s", err)
