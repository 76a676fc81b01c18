"""Every use pool3 makes of a private pyspark / py4j name, each with its fallback.

Nothing else in pool3 touches a private name of pyspark or py4j (an attribute or module with
a leading underscore, or a behaviour pyspark does not document); it calls an accessor here.
Each accessor says what it does, why pool3 needs it, what it was measured to save (the
figures are in bench/RESULTS.md), and what happens when the name is gone: the fallback is
always Spark's own, slower or noisier behaviour, never a failure. :func:`expected` lists
the names that the installed pyspark lacks; ``tests/test_spark_internals.py`` fails on any,
so that an upgrade that removes one is seen rather than silently losing its effect.

The speed-ups and log quieting that rely on these names can be switched off with the
setting ``spark.internals = false`` (or ``POOL3_SPARK__INTERNALS=false``;
:func:`pool3.session.build_session` calls :func:`set_enabled`); every accessor then takes
its fallback. Recognising py4j's errors (:func:`py4j_network_error`,
:func:`py4j_file`) and clearing a job group (:func:`clear_job_group`) are not speed-ups:
they stay on.

Imports nothing from pool3, and pyspark only inside the accessors: :mod:`pool3.daemon`
imports this module before the daemon forks its workers.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

_enabled = True


def set_enabled(on: bool) -> None:
    """Use (True, the default) or avoid (False) the private names from now on in this
    process: the ``spark.internals`` setting."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    """Whether the accessors may use private names (``spark.internals``)."""
    return _enabled


def _context_class(*, load: bool) -> Any:
    """pyspark's ``SparkContext`` class; with ``load=False`` only if pyspark is imported."""
    if load:
        from pyspark import SparkContext

        return SparkContext
    return getattr(sys.modules.get("pyspark.core.context"), "SparkContext", None)


def driver_jvm(context: Any) -> Any:
    """``SparkContext._jvm``: the driver JVM's py4j view, or None.

    Why: :func:`pool3.session.build_session` lowers two log4j loggers whose warnings are
    false for pool3's hidden staging folders ("All paths were ignored") and glob-escaped
    paths (a stack trace from ``FileStreamSink``). Benefit: a clean console, no time.
    Fallback (the name gone, Spark Connect, or internals off): None; the warnings show.
    """
    return getattr(context, "_jvm", None) if enabled() else None


def detach_accumulator_server(context: Any) -> Any:
    """``SparkContext._accumulatorServer``, taken off the context so that ``stop()`` skips it;
    returns the server (the caller shuts it down in a daemon thread), or None.

    Why: ``spark.stop()`` shuts this server down after the JVM, and its handler looks for
    the shutdown once a second. Measured (bench/RESULTS.md, "Session stop without waiting
    for pyspark's accumulator server"): 0.85 s of ``spark.stop()``'s 0.97 s; from the last
    log line to the shell's prompt 1.69 s -> 0.80 s. pool3 uses no accumulators.
    Fallback (the name or its ``shutdown`` gone, or internals off): None; ``stop()`` waits.
    """
    server = getattr(context, "_accumulatorServer", None) if enabled() else None
    if not callable(getattr(server, "shutdown", None)):
        return None
    context._accumulatorServer = None  # pyspark's stop() skips a None server
    return server


def launched_gateway(*, load: bool = False) -> Any:
    """``SparkContext._gateway`` when this process launched the JVM (its py4j gateway has
    the JVM's ``Popen`` as ``.proc``), else None. ``load``: import pyspark if it is not.

    Why: :func:`shut_down_gateway` and the class-data archive's child
    (:mod:`pool3.jvm.archive`), which must wait for its JVM to exit. Fallback (the names
    gone, or internals off): None, see those two.
    """
    context = _context_class(load=load)
    gateway = getattr(context, "_gateway", None) if enabled() else None
    return gateway if getattr(gateway, "proc", None) is not None else None


def jvm_started() -> bool:
    """Whether a driver JVM already runs in (or for) this process: ``SparkContext._gateway``
    is set, or ``spark-submit`` launched one for us (``PYSPARK_GATEWAY_PORT``).

    Why: pool3 adds its JVM options (class-data archive, C1 JIT, log4j file, the daemon
    module) only to a JVM it is about to start; a running one would ignore them.
    Fallback (the name gone, or internals off): a public test, an active SparkSession;
    misses a bare SparkContext without a session (its options are then not applied).
    """
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        return True
    context = _context_class(load=True)
    if enabled() and hasattr(context, "_gateway"):
        return context._gateway is not None
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() is not None


def shut_down_gateway() -> bool:
    """Close py4j's gateway in the driver JVM this process launched, dropping the frees
    queued for py4j's garbage-collection thread first (``_gateway_client.finalizer_deque``);
    True when it did. For the very end of a process: no JVM call works afterwards.

    Why: HotSpot's exit waits ~0.3 s for threads in native code (the gateway's accept).
    Measured (bench/RESULTS.md, "How the hand-run start-up figures of this stop were taken"):
    a pipe reading the command's output closed 0.41 s after the process, 0.07-0.09 s with
    the gateway closed. Fallback (the names gone, or internals off): False; the JVM exits
    ~0.4 s after this process, as without pool3.
    """
    gateway = launched_gateway()
    if gateway is None:
        return False
    deque = getattr(getattr(gateway, "_gateway_client", None), "finalizer_deque", None)
    if deque is not None:
        deque.clear()
    gateway.shutdown()
    return True


def clear_job_group(context: Any) -> None:
    """End this thread's job group (set by ``setJobGroup``).

    pyspark 4.3 has no ``clearJobGroup``; Spark's own clears it by setting the local
    property ``spark.jobGroup.id`` to null, which pyspark passes through (typed ``str``).
    Uses ``clearJobGroup`` where a pyspark has it. Not a speed-up: always on.
    """
    clear = getattr(context, "clearJobGroup", None)
    if callable(clear):
        clear()
    else:
        context.setLocalProperty("spark.jobGroup.id", None)


def py4j_network_error(err: BaseException) -> bool:
    """Whether ``err`` is py4j's ``Py4JNetworkError`` (the JVM went away mid-call); by class
    where py4j imports, by class name otherwise. Not a speed-up: always on."""
    try:
        from py4j.protocol import Py4JNetworkError
    except ImportError:
        return type(err).__name__ == "Py4JNetworkError"
    return isinstance(err, Py4JNetworkError)


def py4j_file(filename: str) -> bool:
    """Whether code at ``filename`` is py4j's (installed, or from Spark's py4j zip): how
    pool3 tells an error raised inside a JVM call, and py4j's own log records. Always on."""
    return f"{os.sep}py4j{os.sep}" in filename


def daemon_unusable() -> str | None:
    """Why :mod:`pool3.daemon` cannot stand in for Spark's Python daemon here, or None.

    pool3.daemon moves Spark's ``pyspark.zip`` behind the installed pyspark it was cut from,
    then runs ``pyspark.daemon`` as ``__main__`` (as ``python -m pyspark.daemon`` does), and
    relies on that daemon reading the worker module from ``sys.argv[1]``. Measured
    (bench/RESULTS.md, "pool3 featurize start-up ... pool3.daemon"): the first Python job
    2.55 s -> 1.72 s, a 32-image featurize's fixed cost 5.21 s -> 4.68 s. Checked: internals
    on, ``pyspark.daemon`` present and reading ``sys.argv``, and the zip inside the
    installed package. Fallback: Spark's own daemon (``pyspark.daemon``).
    """
    return "spark.internals is off" if not enabled() else _daemon_problem()


def _daemon_problem() -> str | None:
    spec = importlib.util.find_spec("pyspark.daemon")
    if spec is None or spec.origin is None:
        return "pyspark has no pyspark.daemon"
    try:
        with open(spec.origin, encoding="utf-8") as handle:
            source = handle.read()
    except OSError as err:
        return f"cannot read {spec.origin}: {err}"
    if "sys.argv[1]" not in source or 'if __name__ == "__main__"' not in source:
        return "pyspark.daemon no longer takes its worker module from sys.argv"
    package = os.path.dirname(os.path.dirname(spec.origin))
    if not os.path.isfile(os.path.join(package, "pyspark", "python", "lib", "pyspark.zip")):
        return f"no pyspark.zip in the installed pyspark at {package}"
    return None


def run_spark_daemon() -> None:
    """Run Spark's Python daemon (``python -m pyspark.daemon`` in this process; its worker
    module stays in ``sys.argv[1]``)."""
    import runpy

    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)


def expected(context: Any = None) -> list[str]:
    """The private names this module uses that the installed pyspark / py4j lack (``[]``:
    all there). With a running Classic ``context``, its instance attributes are checked too.
    """
    missing = []
    sc = _context_class(load=True)
    for name in ("_gateway", "_jvm"):
        if not hasattr(sc, name):
            missing.append(f"pyspark.SparkContext.{name}")
    why = _daemon_problem()
    if why is not None:
        missing.append(why)
    if context is not None:
        for name in ("_jvm", "_accumulatorServer"):
            if getattr(context, name, None) is None:
                missing.append(f"a running SparkContext's {name}")
        if getattr(getattr(sc, "_gateway", None), "proc", None) is None:
            missing.append("SparkContext._gateway.proc (the JVM pyspark launched)")
        client = getattr(getattr(sc, "_gateway", None), "_gateway_client", None)
        if getattr(client, "finalizer_deque", None) is None:
            missing.append("SparkContext._gateway._gateway_client.finalizer_deque")
    return missing
