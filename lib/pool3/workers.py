"""The Python a Spark Classic session's workers run, and whether it can import pool3.

A ``SparkContext`` sends its ``pythonExec`` with every Python function it creates (pyspark's
``_wrap_function``, read when a UDF or ``mapInPandas`` is created): ``PYSPARK_PYTHON`` as it
was when the context started, else ``"python3"`` found on ``PATH`` (``spark.pyspark.python``
counts only where ``spark-submit`` or ``bin/pyspark`` turn it into ``PYSPARK_PYTHON`` for the
driver). A notebook whose kernel is a virtual environment's Python, without that
environment on ``PATH``, thus gets workers that cannot import pool3, and the first API call
would fail deep in a worker traceback. :func:`check_worker_python` (called by
:func:`pool3.connect.ship_code`, which every API entry point calls first) finds that out once
per context and, on a ``local`` master, points the context at this interpreter; elsewhere it
raises one :class:`~pool3.errors.ConfigError` with the fix.

May import: :mod:`pool3.errors`, pyspark. Never imports other pool3 packages; only
:mod:`pool3.connect` imports it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from pool3.errors import ConfigError, as_resource_error

if TYPE_CHECKING:
    from pyspark import SparkContext

logger = logging.getLogger(__name__)

#: what every pool3 worker imports: pool3, and what its mapInPandas steps need
WORKER_MODULES = ("pool3", "numpy", "pandas", "pyarrow")
#: seconds a fresh interpreter gets to find them (it takes ~0.05 s)
FIND_TIMEOUT_S = 30.0
#: per context, the ``pythonExec`` that was found to import pool3
_CHECKED: weakref.WeakKeyDictionary[SparkContext, str] = weakref.WeakKeyDictionary()

_EXPLICIT = (
    "set PYSPARK_PYTHON={python} in the environment the kernel or script starts with (a "
    "Jupyter kernel spec's env, or os.environ before the session is built), or "
    "--conf spark.pyspark.python={python} with spark-submit or pyspark"
)


def worker_python(sc: SparkContext) -> str:
    """What a local worker runs: ``sc.pythonExec`` found on this process's ``PATH`` (as the
    JVM, which inherited it, finds it), or as it is when it is not found."""
    return shutil.which(sc.pythonExec) or sc.pythonExec


def same_interpreter(a: str, b: str) -> bool:
    """Whether executables ``a`` and ``b`` are one Python with one set of packages: the same
    file in the same directory. A virtual environment's ``bin/python`` is often a link to its
    base interpreter, but it runs with the environment's packages, so the folder counts."""
    try:
        folders = (os.path.dirname(os.path.abspath(p)) for p in (a, b))
        return os.path.samefile(*folders) and os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def can_run_pool3(python: str) -> bool:
    """Whether a fresh ``python`` (started as a worker starts: another working directory,
    this environment) finds :data:`WORKER_MODULES` (found, not imported: ~0.05 s) and has
    this interpreter's ``major.minor`` version, which pyspark requires of its workers."""
    major, minor = sys.version_info[:2]
    code = (
        "import importlib.util as u, sys; sys.exit(sys.version_info[:2] != "
        f"({major}, {minor}) or not all(map(u.find_spec, {WORKER_MODULES!r})))"
    )
    try:
        done = subprocess.run(
            [python, "-c", code],
            cwd=tempfile.gettempdir(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=FIND_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def shipped_with_py_files(sc: SparkContext) -> bool:
    """Whether this very pool3 was imported from a zip that ``--py-files``
    (``spark.submit.pyFiles``) ships to the executors, as ``spark-submit.sh`` does."""
    package = Path(os.path.abspath(__file__)).parent  # pool3's folder (or the zip's)
    if not package.parent.is_file():  # not inside a zip
        return False
    shipped = sc.getConf().get("spark.submit.pyFiles") or ""
    return package.parent.name in {Path(p).name for p in shipped.split(",") if p}


def probe_workers(sc: SparkContext) -> tuple[str, list[str]]:
    """One task on an executor: its Python's ``sys.executable`` and which of
    :data:`WORKER_MODULES` it does not find (pool3 on its path or in the files shipped with
    ``--py-files`` / ``addPyFile``). The function is defined inside this one, so cloudpickle
    sends it by value: unpickling it needs pyspark only, never pool3."""
    modules = WORKER_MODULES

    def probe(_: object) -> tuple[str, list[str]]:
        import importlib.util
        import sys

        return sys.executable, [m for m in modules if importlib.util.find_spec(m) is None]

    found: tuple[str, list[str]] = sc.parallelize([0], 1).map(probe).collect()[0]
    return found


def _reason(err: BaseException) -> str:
    """What a failed job says about why: the innermost ``...Error: ...`` or
    ``...Exception: ...`` before the JVM's stack (a Python worker's last traceback line,
    or Java's ``IOException: Cannot run program ...``), else the message's first line."""
    head = str(err).split("\n\tat ")[0]
    found = re.findall(r"(?<![\w.$])(?=([\w.$]+(?:Error|Exception)\b[^:\n]*: [^\n]+))", head)
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    return (found[-1] if found else lines[0] if lines else type(err).__name__)[:400]


def _fix(python: str) -> str:
    return (
        f"run them on a Python that has pool3: set PYSPARK_PYTHON (or spark.pyspark.python) "
        f"to it before the session starts, install pool3 on the workers' {python}, or ship it "
        f"with spark-submit.sh (--py-files build/pool3.zip)"
    )


def check_worker_python(sc: SparkContext, *, local: bool) -> None:
    """Make sure the Python workers of ``sc`` can import pool3, once per context (and again
    only if ``sc.pythonExec`` changes).

    ``local`` (a ``local[N]`` master, :func:`pool3.connect.is_local_master`): the workers
    run :func:`worker_python`; the same interpreter as this process's needs no check, another
    is asked with :func:`can_run_pool3`. One that cannot run pool3 is replaced by
    ``sys.executable`` for every Python function created from then on, with one warning.

    Otherwise (a cluster): nothing when this pool3 came from a zip shipped with
    ``--py-files``; else :func:`probe_workers` (a one-task job, ~1 s).

    Raises
    ------
    ConfigError
        The workers of a cluster lack pool3, or their Python could not run the probe: the
        message names the interpreter and the fix.
    """
    python = sc.pythonExec
    if _CHECKED.get(sc) == python:
        return
    if local:
        found = worker_python(sc)
        if not same_interpreter(found, sys.executable) and not can_run_pool3(found):
            sc.pythonExec = sys.executable
            logger.warning(
                "Spark's Python workers would run %s (Spark runs PYSPARK_PYTHON, else python3 "
                "from PATH), which cannot run pool3 (it needs %s and Python %d.%d): this "
                "session's Python functions run on %s from now on. To make it explicit, %s",
                found if found == python else f"{python} = {found}",
                ", ".join(WORKER_MODULES),
                *sys.version_info[:2],
                sys.executable,
                _EXPLICIT.format(python=sys.executable),
            )
        _CHECKED[sc] = sc.pythonExec
        return
    if not shipped_with_py_files(sc):
        what = f"checking that the Python workers ({python}) can import pool3"
        try:
            executable, missing = probe_workers(sc)
        except Exception as err:
            resource = as_resource_error(err, what)
            if resource is not None:
                raise resource from err
            raise ConfigError(
                f"the Python workers of {sc.master} could not run {python} "
                f"({_reason(err)}): {_fix(python)}"
            ) from err
        if missing:
            raise ConfigError(
                f"the Python workers of {sc.master} run {executable} (pythonExec {python!r}), "
                f"which cannot import {', '.join(missing)}: {_fix(executable)}"
            )
    _CHECKED[sc] = python
