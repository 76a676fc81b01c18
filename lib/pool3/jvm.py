"""The driver JVM pool3 starts itself: a class-data archive so that it starts in half the time.

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
leaves the flag out when ``spark.driver.extraClassPath`` changes the class path.
:func:`with_quick_jit` (``spark.quick_jit``) runs such a JVM's JIT with C1 only;
:func:`with_daemon_module` has its local Python workers forked by :mod:`pool3.daemon`.

May import: :mod:`pool3.config`, :mod:`pool3.errors`, pyspark.
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
            [sys.executable, "-m", "pool3.jvm", tmp],
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


def _train(archive: str) -> None:
    """The child of :func:`build_archive`: the jobs of a run, in a JVM that writes
    ``archive`` when it exits."""
    import pandas as pd
    from pyspark import SparkContext
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
    gateway = SparkContext._gateway
    spark.stop()
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        gateway.shutdown()
        proc = gateway.proc
        if proc.stdin is not None:
            proc.stdin.close()  # the JVM exits when its stdin closes, writing the archive
        proc.wait(BUILD_TIMEOUT_S)


if __name__ == "__main__":
    _train(sys.argv[1])


def pool3_starts_jvm() -> bool:
    """Whether the next session starts its driver JVM here (not yet running, and not one that
    ``spark-submit`` launched for us: it sets ``PYSPARK_GATEWAY_PORT``)."""
    from pyspark import SparkContext

    return SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ


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


#: the driver JVM's JIT with C1 only (``spark.quick_jit``)
QUICK_JIT = "-XX:TieredStopAtLevel=1"


def with_quick_jit(conf: Mapping[str, str]) -> dict[str, str]:
    """``conf`` with :data:`QUICK_JIT` among the driver's Java options, for a JVM that pool3
    starts itself and whose options name no JIT tier of their own.

    Measured on 2 cores (``bench/jvm_bench.py``, bench/RESULTS.md): session 4.6 s -> 3.0 s,
    first Python job 3.9 s -> 3.1 s; writing 20,000 feature rows to Parquet from
    ``mapInPandas`` 8.4 s -> 11.3 s (+0.15 ms of JVM time per row). A featurize run's JVM
    work competes with its workers for the cores, so C1 pays off up to ~30,000 images and
    costs ~0.2 % of a run beyond; training, whose JVM work is larger, never uses it.
    """
    conf = dict(conf)
    options = conf.get("spark.driver.extraJavaOptions", "")
    if not pool3_starts_jvm() or "TieredStopAtLevel" in options:
        return conf
    return {**conf, "spark.driver.extraJavaOptions": f"{options} {QUICK_JIT}".strip()}


#: Spark's setting for the module its Python daemon runs, and pool3's (:mod:`pool3.daemon`)
DAEMON_KEY = "spark.python.daemon.module"
DAEMON_MODULE = "pool3.daemon"


def with_daemon_module(
    conf: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``conf`` with Spark's Python daemon run as :mod:`pool3.daemon` (pyspark imported from
    its installed, compiled package instead of its zip: ~0.8 s off a session's first Python
    job on 2 cores), when that is safe to know from here: a JVM pool3 starts itself, a
    ``local`` master, workers running this interpreter, the daemon on and no daemon module of
    the user's, and pool3 found by a fresh process of this interpreter (:func:`fresh_path`)
    as the package this process runs. Otherwise ``conf`` unchanged; ``spark.extra`` can set
    ``spark.python.daemon.module = "pyspark.daemon"`` to turn it off.
    """
    environ = os.environ if environ is None else environ
    conf = dict(conf)
    master = conf.get("spark.master", "")
    python = conf.get("spark.pyspark.python") or environ.get("PYSPARK_PYTHON") or sys.executable
    if (
        not pool3_starts_jvm()
        or not (master == "local" or master.startswith("local["))
        or DAEMON_KEY in conf
        or conf.get("spark.python.use.daemon", "true").lower() != "true"
        or not _same_file(python, sys.executable)
    ):
        return conf
    import importlib.machinery

    import pool3

    spec = importlib.machinery.PathFinder.find_spec("pool3", fresh_path(conf, environ))
    found = spec.submodule_search_locations if spec is not None else None
    here = Path(pool3.__file__).parent
    if not found or not any(_same_file(where, str(here)) for where in found):
        log.debug("Spark's own Python daemon: pool3 at %s is not on a new worker's path", here)
        return conf
    return {**conf, DAEMON_KEY: DAEMON_MODULE}


def fresh_path(conf: Mapping[str, str], environ: Mapping[str, str]) -> list[str]:
    """The ``sys.path`` of a local Python worker, as far as it can hold pool3: its working
    directory (``python -m`` puts it first), the ``PYTHONPATH`` Spark gives it
    (``spark.executorEnv.PYTHONPATH``, then the driver's), and this interpreter's site
    directories with the paths their ``.pth`` files add."""
    import site

    try:
        path = [os.getcwd()]
    except OSError:  # the working directory was removed
        path = []
    for value in (conf.get("spark.executorEnv.PYTHONPATH", ""), environ.get("PYTHONPATH", "")):
        path += [os.path.abspath(p) for p in value.split(os.pathsep) if p]
    sites = list(getattr(site, "getsitepackages", list)())  # absent in old virtualenvs
    if site.ENABLE_USER_SITE:
        sites.append(site.getusersitepackages())
    for site_dir in sites:
        path.append(site_dir)
        for pth in sorted(Path(site_dir).glob("*.pth")):
            try:
                lines = pth.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if line and not line.startswith(("#", "import ", "import\t")):
                    path.append(os.path.join(site_dir, line))
    return path


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
