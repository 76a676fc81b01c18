"""Spark's Python daemon, importing pyspark from its installed package instead of its zip.

Spark starts every executor's Python workers from one daemon process (``python -m
pyspark.daemon``) whose ``PYTHONPATH`` begins with ``$SPARK_HOME/python/lib/pyspark.zip``
and the py4j zip. With pyspark installed by pip, ``SPARK_HOME`` is the installed package, and
those zips hold the same source files as the package beside them, but as ``.py`` only:
the daemon and each worker compile pyspark from source at every start (the workers run
with ``PYTHONDONTWRITEBYTECODE``), where the installed package has its compiled files.
Measured on 2 cores: ``import pyspark.daemon`` 0.62 s from the zip vs 0.16 s installed; the
first Python job of a session 2.55 s -> 1.72 s (bench/RESULTS.md, issue 25).

Run as ``python -m pool3.daemon [worker module]`` (Spark's ``spark.python.daemon.module``,
set by :func:`pool3.jvm.with_daemon_module` for local runs only, where
:func:`pool3.spark_internals.daemon_unusable` finds pyspark as expected), this module moves a
zip behind the ``sys.path`` entry that holds the very package the zip was cut from, then runs
pyspark's own daemon as ``python -m pyspark.daemon`` would. A zip of another Spark
installation stays where it is. Nothing else is imported before the daemon forks its workers
(pyspark's rule: no threads before a fork).
"""

from __future__ import annotations

import os
import sys

from pool3.spark_internals import run_spark_daemon

#: the zips Spark puts first on a Python worker's path, by file name
SPARK_ZIP = "pyspark.zip"


def installed_package_of(zip_path: str, path: list[str]) -> str | None:
    """The installed package directory ``zip_path`` was cut from, if it is importable through
    an entry of ``path`` (``<entry>/pyspark/python/lib/pyspark.zip`` -> ``<entry>/pyspark``;
    the py4j zip beside it -> ``<entry>/py4j`` when its version matches the zip's name).
    None for any other zip."""
    lib = os.path.dirname(zip_path)
    pyspark = os.path.dirname(os.path.dirname(lib))
    entry = os.path.dirname(pyspark)
    if os.path.basename(pyspark) != "pyspark" or entry not in path:
        return None
    if not os.path.isfile(os.path.join(pyspark, "__init__.py")):
        return None
    name = os.path.basename(zip_path)
    if name == SPARK_ZIP:
        return pyspark
    if name.startswith("py4j-") and name.endswith("-src.zip"):
        py4j = os.path.join(entry, "py4j")
        wanted = name[len("py4j-") : -len("-src.zip")]
        try:
            with open(os.path.join(py4j, "version.py"), encoding="utf-8") as handle:
                version = handle.read()
        except OSError:
            return None
        return py4j if f"'{wanted}'" in version or f'"{wanted}"' in version else None
    return None


def installed_first(path: list[str]) -> list[str]:
    """``path`` with every Spark zip that has its installed package on ``path`` (see
    :func:`installed_package_of`) moved to the end, the rest in order."""
    moved = [entry for entry in path if installed_package_of(entry, path) is not None]
    return [entry for entry in path if entry not in moved] + moved


def main() -> None:
    sys.path[:] = installed_first(sys.path)
    run_spark_daemon()


if __name__ == "__main__":
    main()
