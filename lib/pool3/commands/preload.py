"""The driver's Spark-free preparations of a featurize or classify run, done while the JVM starts.

Starting the driver JVM takes seconds in which the Python process only waits for it.
:class:`Preload` uses that time, in one daemon thread, for
what the run needs next and what needs no session: the imports of the featurize stack
(pandas, pyarrow, OpenVINO, pool3's step), the model bundle, and its OpenVINO IR from the
cache when this host would run OpenVINO. The run then asks for them where it would have
loaded them itself; an error in the thread is raised there, as the same call would have
raised it, so a run's errors and their order are unchanged. On 2 cores the JVM's start
keeps both busy and the gain (~0.5 s of model step moved off the critical path) was within
the noise (bench/RESULTS.md, "Start-up before and after the last changes of issue 25"); it
can only help where the JVM's start leaves cores idle (not measured).

The IR is read only when the runtime :func:`pool3.model.runtime.resolve` chooses for this
host is OpenVINO; on a cluster the executors decide, and the shipping uses the IR only for
the bundle it was made from (:func:`pool3.extraction.shipping.ship_model`).
"""

from __future__ import annotations

import logging
import threading
import time

from pool3.config import Config
from pool3.model import ModelBundle

log = logging.getLogger(__name__)


class Preload:
    """Load the model bundle (and its IR) and import the featurize stack in the background.

    ``Preload(config).start()`` before the session; :meth:`bundle` and :meth:`ir` wait for
    the thread and return its results (or raise its error).
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._thread = threading.Thread(target=self._run, name="pool3-preload", daemon=True)
        self._bundle: ModelBundle | None = None
        self._ir: ModelBundle | None = None
        self._error: BaseException | None = None
        self._ir_error: BaseException | None = None
        self.seconds: float | None = None

    def start(self) -> Preload:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            _import_stack()
            from pool3.model import load_bundle

            home = self._config.model.home or None
            self._bundle = load_bundle(self._config.model.source, home=home)
        except BaseException as err:  # raised again by bundle(), in the caller's thread
            self._error = err
            return
        finally:
            self.seconds = round(time.perf_counter() - started, 3)
        if _runs_openvino_here(self._config):
            try:
                from pool3.model.openvino_ir import to_openvino

                self._ir = to_openvino(self._bundle, home=self._config.model.home or None)
            except BaseException as err:  # the shipping converts again and reports
                self._ir_error = err
            self.seconds = round(time.perf_counter() - started, 3)

    def _join(self) -> None:
        if self._thread.ident is None:  # never started: do the work here
            self._run()
        else:
            self._thread.join()

    def bundle(self) -> ModelBundle:
        """The model bundle of ``model.source`` (as :func:`pool3.model.load_bundle` gives it)."""
        self._join()
        if self._error is not None:
            raise self._error
        assert self._bundle is not None
        log.debug("preloaded while the JVM started: %.2f s", self.seconds or 0.0)
        return self._bundle

    def ir(self) -> ModelBundle | None:
        """The bundle's float OpenVINO IR, if it was read (None: convert when shipping)."""
        self._join()
        if self._ir_error is not None:
            log.debug("no preloaded IR: %s", self._ir_error)
        return self._ir


def model_for_run(
    config: Config, preload: Preload | None
) -> tuple[ModelBundle, ModelBundle | None]:
    """(bundle, its preloaded float IR or None) of a run: from ``preload`` if there is one,
    else the bundle loaded here (:func:`pool3.model.load_bundle`) and no IR."""
    if preload is None:
        from pool3.model import load_bundle

        return load_bundle(config.model.source, home=config.model.home or None), None
    return preload.bundle(), preload.ir()


def _import_stack() -> None:
    """The modules a featurize run imports after the session, imported now."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import pool3.commands.lifecycle
    import pool3.extraction.calibration
    import pool3.extraction.incremental
    import pool3.extraction.step
    import pool3.extraction.warmup  # noqa: F401


def _runs_openvino_here(config: Config) -> bool:
    """Whether :func:`pool3.model.runtime.resolve` picks OpenVINO for this host."""
    from pool3.model.runtime import resolve, this_host

    try:
        placement = resolve(config.model.runtime, config.model.precision, [this_host()])
    except Exception:  # e.g. OpenVINO asked for and not installed: the run reports it
        return False
    return placement.runtime == "openvino"
