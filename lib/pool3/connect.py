"""Which kind of session pool3 runs on, and what differs: Spark Classic or Spark Connect.

A Spark Connect session has no SparkContext, no JVM in this process, no broadcast and no
accumulators. The few places where the two kinds must differ live here: the Connect URL
(:func:`remote_url`), the settings a client may set (:func:`apply_remote_conf`), the default
parallelism (:func:`default_parallelism`, :func:`task_slots`), pool3's own code for a
server's workers (:func:`ship_code`; on Classic, the check that the workers' Python has it,
:mod:`pool3.workers`), and job cancellation (:func:`tagged`, :func:`interrupt`). Everything
else uses the DataFrame API both kinds share.

May import: :mod:`pool3.config`, :mod:`pool3.workers`, :mod:`pool3.spark_internals`, pyspark.
Never imports other pool3 packages.
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from pool3.config import Config
from pool3.spark_internals import clear_job_group
from pool3.workers import check_worker_python, same_interpreter, worker_python

logger = logging.getLogger(__name__)


def remote_url(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """The Spark Connect URL a run uses, ``""`` for Spark Classic.

    ``spark.remote`` (``--remote``) wins, then ``SPARK_REMOTE`` (as pyspark reads it), then a
    ``spark.master`` of the form ``sc://...``.
    """
    environ = os.environ if environ is None else environ
    for url in (config.spark.remote, environ.get("SPARK_REMOTE", ""), config.spark.master):
        if url.startswith("sc://"):
            return url
    return ""


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


#: per session, read once (a session's default parallelism does not change)
_PARALLELISM: weakref.WeakKeyDictionary[SparkSession, int] = weakref.WeakKeyDictionary()


def default_parallelism(spark: SparkSession) -> int:
    """Tasks the session runs at once by default: ``spark.default.parallelism`` where set,
    else the SparkContext's (Spark Classic: a local call), else read once per session from
    the server (Spark Connect, which has no SparkContext): a ``range`` without a partition
    count is split into exactly the default parallelism, and the highest
    ``spark_partition_id`` of one is read with a tiny job (no Python worker, ~0.3 s).
    """
    from pyspark.sql import functions as F

    configured = spark.conf.get("spark.default.parallelism", None)
    if configured:
        return max(1, int(configured))
    if not is_connect(spark):
        return max(1, int(spark.sparkContext.defaultParallelism))
    if spark not in _PARALLELISM:
        parts = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("part"))
        row = parts.agg(F.max("part").alias("last")).first()
        _PARALLELISM[spark] = 1 + int(row["last"]) if row is not None else 1
    return _PARALLELISM[spark]


#: the Connect sessions that have pool3's code already
_CODE_SHIPPED: weakref.WeakSet[SparkSession] = weakref.WeakSet()


@functools.cache
def code_zip() -> Path:
    """A deterministic zip of the installed package (``lib/pool3``), built once per process
    and named by its content's hash (so two versions never collide on the server)."""
    import hashlib
    import tempfile

    from pool3_tools.packaging import zip_bytes

    data = zip_bytes(Path(__file__).resolve().parent)
    name = f"pool3-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    path = Path(tempfile.gettempdir()) / "pool3-code" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_suffix(f".{os.getpid()}.tmp")
        aside.write_bytes(data)
        aside.replace(path)
    return path


def ship_code(spark: SparkSession) -> str | None:
    """Send pool3's own code to a Spark Connect server's Python workers, once per session:
    :func:`code_zip` with ``addArtifacts(pyfile=True)``; it comes first on the workers'
    ``sys.path``, so they run the client's version. The server's Python still needs pool3's
    dependencies (numpy, pandas, pyarrow, Pillow, OpenVINO...).

    Returns the zip's name, or None on Spark Classic, where the driver's environment (or
    ``spark-submit.sh``'s ``--py-files``) provides the code: there the workers' Python is
    checked instead, once per context (:func:`pool3.workers.check_worker_python`: on a local
    master one without pool3 is replaced by this interpreter, elsewhere a ConfigError).
    """
    if not is_connect(spark):
        check_worker_python(spark.sparkContext, local=is_local_master(spark))
        return None
    path = code_zip()
    if spark not in _CODE_SHIPPED:
        spark.addArtifacts(str(path), pyfile=True)
        _CODE_SHIPPED.add(spark)
        logger.info("pool3's code shipped to the Spark Connect server as %s", path.name)
    return path.name


#: Settings a Spark Connect server fixes when it starts; a client cannot change them.
SERVER_ONLY = ("spark.master", "spark.app.name", "spark.driver.extraJavaOptions")


def apply_remote_conf(spark: SparkSession, conf: Mapping[str, str]) -> list[str]:
    """Set what a Connect client may set (runtime SQL settings) on ``spark``.

    Returns the static settings whose server value differs from ``conf``, each as
    ``"key=wanted (server: value)"``: they must be given to the server at its start
    (``start-connect-server.sh --conf key=value``, or the cluster's Spark config).
    """
    differ = []
    for key, value in conf.items():
        if key in SERVER_ONLY:
            continue
        if spark.conf.isModifiable(key):
            spark.conf.set(key, value)
            continue
        current = spark.conf.get(key, None)
        if current != value:
            differ.append(f"{key}={value} (server: {current if current is not None else 'unset'})")
    return differ


def is_local_master(spark: SparkSession) -> bool:
    """Whether Spark Classic runs its executors in this process's JVM (``local``,
    ``local[N]``, ``local[*]``): they share this machine's cores and memory. False over
    Spark Connect (the server may be anywhere) and on a cluster."""
    if is_connect(spark):
        return False
    master = spark.sparkContext.master or ""
    return master == "local" or master.startswith("local[")


def workers_are_local(spark: SparkSession) -> bool:
    """Whether the session's Python workers run on this host with this interpreter.

    True for Spark Classic with a ``local`` / ``local[N]`` master whose ``pythonExec`` (what
    Spark runs: ``PYSPARK_PYTHON`` when the context started, else ``python3`` from ``PATH``)
    is this very interpreter (:func:`pool3.workers.same_interpreter`): then what a worker
    would report about its host and installed packages is what this process sees, and no
    job is needed to ask. False over Spark Connect (the server may be anywhere), on a
    cluster, and for ``local-cluster`` (other JVMs).
    """
    import sys

    if not is_local_master(spark):
        return False
    return same_interpreter(worker_python(spark.sparkContext), sys.executable)


def task_slots(spark: SparkSession) -> int:
    """Tasks that can run at once now: :func:`default_parallelism` / ``spark.task.cpus``."""
    task_cpus = max(1, int(spark.conf.get("spark.task.cpus", "1") or 1))
    return max(1, default_parallelism(spark) // task_cpus)


@contextmanager
def tagged(spark: SparkSession, tag: str, what: str) -> Iterator[None]:
    """Run this thread's Spark jobs under ``tag``, for :func:`interrupt`.

    Spark Connect: an operation tag (``addTag``). Spark Classic: a job group, not a tag:
    in Spark 4.3 ``addTag`` initialises the session's thread-local ``threadUuid``, which is
    not serialisable, and every MLlib model whose training summary holds the session (e.g.
    ``LinearSVCModel``) then fails to ``transform`` with "Task not serializable".
    """
    if is_connect(spark):
        spark.addTag(tag)
        try:
            yield
        finally:
            spark.removeTag(tag)
        return
    context = spark.sparkContext
    context.setJobGroup(tag, what, interruptOnCancel=True)
    try:
        yield
    finally:
        clear_job_group(context)


def interrupt(spark: SparkSession, tag: str | None = None) -> int:
    """Cancel the jobs of :func:`tagged` ``tag``, or all of this session's (None); returns
    how many operations were interrupted (Spark Classic: -1, it does not say)."""
    if is_connect(spark):
        return len(spark.interruptTag(tag) if tag else spark.interruptAll())
    if tag:
        spark.sparkContext.cancelJobGroup(tag)
    else:
        spark.sparkContext.cancelAllJobs()
    return -1
