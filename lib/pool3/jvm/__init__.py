"""The driver JVM that pool3 starts itself, and the options it starts it with.

- :mod:`pool3.jvm.java`: the Java Spark will start, checked (version 17+) before it starts;
  whether pool3 starts the driver JVM at all (not under ``spark-submit``, not a second
  session, never over Spark Connect): only then are the options below applied.
- :mod:`pool3.jvm.archive`: the class-data archive (``pool3 setup``) that halves the JVM's
  start-up (``python -m pool3.jvm`` is its builder's child process).
- :mod:`pool3.jvm.options`: the driver's log4j2 file and the C1-only JIT
  (``spark.quick_jit``).
- :mod:`pool3.jvm.daemon_module`: Spark's Python daemon for local workers, :mod:`pool3.daemon`
  where its assumptions hold, else Spark's own.

The private pyspark names these rely on are reached through :mod:`pool3.spark_internals`.

May import: :mod:`pool3.config`, :mod:`pool3.errors`, :mod:`pool3.spark_internals`, pyspark.
"""

from pool3.jvm.archive import archive_option, archive_path, build_archive, with_jvm_archive
from pool3.jvm.daemon_module import DAEMON_KEY, DAEMON_MODULE, with_daemon_module
from pool3.jvm.java import MIN_JAVA, check_java, parse_java_version, pool3_starts_jvm
from pool3.jvm.options import LOG4J2_FILE, QUICK_JIT, with_quick_jit, with_quiet_driver_log

__all__ = [
    "DAEMON_KEY",
    "DAEMON_MODULE",
    "LOG4J2_FILE",
    "MIN_JAVA",
    "QUICK_JIT",
    "archive_option",
    "archive_path",
    "build_archive",
    "check_java",
    "parse_java_version",
    "pool3_starts_jvm",
    "with_daemon_module",
    "with_jvm_archive",
    "with_quick_jit",
    "with_quiet_driver_log",
]
