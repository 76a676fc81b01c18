"""The driver JVM's class-data archive, so that a JVM pool3 starts starts in half the time.

A run in ``local[*]`` (a laptop, a notebook, a scheduled job on one machine) starts Spark's
JVM, which then loads and verifies some 15,000 classes from Spark's jars before the session
and its first job are ready: ~5.5 s and ~2.8 s on a 2-core VM. Java's application
class-data sharing (a dynamic CDS archive, JDK 13+: ``-XX:ArchiveClassesAtExit`` to write it,
``-XX:SharedArchiveFile`` to map it) keeps those classes parsed and verified in one file
that the JVM maps at start: 3.3-3.7 s and 1.5-1.7 s measured on the same VM
(bench/RESULTS.md). The archive holds classes only, never data or settings: results are the
same with or without it.

The archive fits one ``java`` binary and one set of Spark jars at their paths (two venvs
are two class paths), so its name carries a hash of both:
``$POOL3_HOME/jvm/spark-<version>-<hash>.jsa``. :func:`build_archive` writes it
(``pool3 setup``, which ``make install`` runs): a child process starts a local session with
``-XX:ArchiveClassesAtExit``, runs the kinds of job a run runs (a Python UDF over Arrow,
a Parquet write and read), stops, and waits for its JVM to write the archive, which is then
moved into place atomically. :func:`archive_option` gives the flag for a JVM that pool3
starts when the archive exists, with the JVM's CDS log off (a JVM that cannot use it would
print a warning on stdout, into the command's output, then start as without it); pool3
leaves the flag out when ``spark.driver.extraClassPath`` changes the class path
(:func:`with_jvm_archive`).

May import: :mod:`pool3.config`, :mod:`pool3.errors`, :mod:`pool3.spark_internals`, pyspark.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from pool3.config.home import pool3_home
from pool3.errors import ConfigError
from pool3.jvm.java import pool3_starts_jvm
from pool3.spark_internals import launched_gateway

log = logging.getLogger(__name__)

#: bump when what goes into the archive changes
ARCHIVE_FORMAT = 1
#: JVM options that keep class-data-sharing warnings off stdout
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
#: the most a child process may take to write the archive, s
BUILD_TIMEOUT_S = 600


def spark_home() -> Path:
    """The Spark that pyspark starts: ``$SPARK_HOME``, else the installed pyspark's folder."""
    import pyspark

    env = os.environ.get("SPARK_HOME")
    return Path(env) if env else Path(pyspark.__file__).parent


def archive_path(java: str, *, home: str | None = None) -> Path:
    """Where the archive for ``java`` and the current Spark jars lives (it may not exist)."""
    import pyspark

    digest = hashlib.sha256(f"format {ARCHIVE_FORMAT}\n".encode())
    binary = Path(java).resolve()
    stat = binary.stat()
    digest.update(f"{binary} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    jars = (spark_home() / "jars").resolve()
    digest.update(f"{jars}\n".encode())  # the class path the archive records: these paths
    for jar in sorted(jars.glob("*.jar")) if jars.is_dir() else ():
        digest.update(f"{jar.name} {jar.stat().st_size}\n".encode())
    name = f"spark-{pyspark.__version__}-{digest.hexdigest()[:16]}.jsa"
    return pool3_home(home) / "jvm" / name


def archive_option(java: str, conf: dict[str, str], *, home: str | None = None) -> str:
    """``-XX:SharedArchiveFile=...`` for a driver JVM started with ``conf``, or ``""`` when
    there is no archive for this Java and Spark, or ``conf`` changes the JVM's class path
    (the archive would not fit) or already names an archive of its own."""
    if conf.get("spark.driver.extraClassPath") or "SharedArchiveFile" in conf.get(
        "spark.driver.extraJavaOptions", ""
    ):
        return ""
    try:
        path = archive_path(java, home=home)
    except OSError:
        return ""
    # -Xlog: a JVM that cannot map it would print its warning on stdout, into a command's
    # output; the name makes that rare, and the JVM starts as without the archive
    return f"-XX:SharedArchiveFile={path} {QUIET}" if path.is_file() else ""


def build_archive(java: str, *, home: str | None = None) -> tuple[Path, float]:
    """Write the archive for ``java`` and the current Spark jars; returns (path, seconds).

    Raises ConfigError, naming what went wrong, if the child process fails (its output's
    tail is in the message).
    """
    path = archive_path(java, home=home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)  # the JVM writes it; it must not exist
    started = time.perf_counter()
    env = {**os.environ, "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pool3.jvm", tmp],  # pool3/jvm/__main__.py: train
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            env=env,
            check=False,
        )
        if result.returncode != 0 or not Path(tmp).is_file() or Path(tmp).stat().st_size == 0:
            tail = "\n".join((result.stderr + result.stdout).strip().splitlines()[-15:])
            raise ConfigError(
                f"could not write the JVM class-data archive {path} (exit code "
                f"{result.returncode}): {tail}\nRuns work without it, ~4 s slower to start"
            )
        os.replace(tmp, path)
    except subprocess.TimeoutExpired as err:
        raise ConfigError(
            f"writing the JVM class-data archive {path} took over {BUILD_TIMEOUT_S} s; runs "
            "work without it"
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, time.perf_counter() - started


def train(archive: str) -> None:
    """The child of :func:`build_archive` (``python -m pool3.jvm``): the jobs of a run, in
    a JVM that writes ``archive`` when it exits."""
    import pandas as pd
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("pool3-jvm-archive")
        .config("spark.driver.extraJavaOptions", f"-XX:ArchiveClassesAtExit={archive}")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .getOrCreate()
    )

    def double(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            yield frame.assign(value=frame["id"] * 2.0)

    with tempfile.TemporaryDirectory(prefix="pool3-jvm-") as tmp:
        files = spark.createDataFrame(pd.DataFrame({"id": range(64), "path": ["p"] * 64}))
        out = files.repartition(2).mapInPandas(double, "id long, path string, value double")
        out.write.parquet(f"{tmp}/t")
        spark.read.parquet(f"{tmp}/t").groupBy("path").count().collect()
        spark.range(8).toPandas()
    gateway = launched_gateway()
    spark.stop()
    if gateway is None:  # internals gone: the JVM exits with this process, writing the
        return  # archive; the parent's pipes stay open until it has (its stdout is theirs)
    gateway.shutdown()
    proc = gateway.proc
    if proc.stdin is not None:
        proc.stdin.close()  # the JVM exits when its stdin closes, writing the archive
    proc.wait(BUILD_TIMEOUT_S)


def with_jvm_archive(conf: Mapping[str, str], java: str, *, home: str | None) -> dict[str, str]:
    """``conf`` with the class-data archive of :mod:`pool3.jvm` among the driver's Java options,
    for a JVM that pool3 starts itself and where the archive exists (``pool3 setup``)."""
    conf = dict(conf)
    if not pool3_starts_jvm():
        return conf
    option = archive_option(java, conf, home=home)
    if not option:
        log.debug("no JVM class-data archive for %s: `pool3 setup` makes start-up faster", java)
        return conf
    options = conf.get("spark.driver.extraJavaOptions", "")
    return {**conf, "spark.driver.extraJavaOptions": f"{options} {option}".strip()}
