"""Which Python daemon forks a local run's workers: :mod:`pool3.daemon` (pyspark imported
from its installed, compiled package instead of Spark's zip) where its assumptions hold,
else Spark's own ``pyspark.daemon``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pool3.jvm.java import pool3_starts_jvm
from pool3.spark_internals import daemon_unusable

log = logging.getLogger(__name__)

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
    the user's, pyspark as :mod:`pool3.daemon` expects it
    (:func:`pool3.spark_internals.daemon_unusable`), and pool3 found by a fresh process of
    this interpreter (:func:`fresh_path`) as the package this process runs. Otherwise
    ``conf`` unchanged: Spark's own daemon. ``spark.internals = false`` or
    ``spark.extra``'s ``spark.python.daemon.module = "pyspark.daemon"`` turn it off.
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
    unusable = daemon_unusable()
    if unusable is not None:
        log.debug("Spark's own Python daemon: %s", unusable)
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
