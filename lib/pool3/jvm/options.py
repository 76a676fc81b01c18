"""The options pool3 gives a driver JVM it starts itself, besides the class-data archive:
its log4j2 file (a quiet console) and, for commands whose JVM mostly waits for Python
workers, a JIT with C1 only (``spark.quick_jit``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pool3.jvm.java import pool3_starts_jvm

#: the driver's log4j2 set-up when pool3 starts the JVM (see the file)
LOG4J2_FILE = Path(__file__).parent.parent / "log4j2.properties"


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


#: the driver JVM's JIT with C1 only (``spark.quick_jit``)
QUICK_JIT = "-XX:TieredStopAtLevel=1"


def with_quick_jit(conf: Mapping[str, str]) -> dict[str, str]:
    """``conf`` with :data:`QUICK_JIT` among the driver's Java options, for a JVM that pool3
    starts itself and whose options name no JIT tier of their own.

    Measured on 2 cores (``python -m bench run startup``, bench/RESULTS.md): session 4.6 s -> 3.0 s,
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
