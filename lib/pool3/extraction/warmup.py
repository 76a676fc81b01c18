"""Warm the Python workers while the driver lists the input.

A Python worker's first featurize task pays for its start, the model build from the
shipped file and the first inference: ~1 s with OpenVINO, ~5-10 s with TensorFlow (its import
and graph tracing) on 2 cores, all before its first row. :class:`WarmUp` runs that as a
tiny job of one task per task slot, in a background thread, as soon as the model is
shipped; the driver meanwhile checks the input and lists the files (no task needed for
that part). The featurize job then starts on warm workers: PySpark reuses idle Python
workers (``spark.python.worker.reuse``, set by :func:`pool3.spark_settings.session_conf`) and the
featurizer is cached per worker process (:func:`pool3.model.cached_featurizer`), under the
same key as the featurize step's (:attr:`ShippedModel.cache_key`).

Best effort by design: if the warm-up fails or is slow, the featurize job does the same work
itself and reports any error properly; a warm-up never changes results.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from pool3.connect import interrupt, tagged, task_slots
from pool3.extraction.shipping import ShippedModel

log = logging.getLogger(__name__)

#: How long the driver waits for the warm-up before starting the real job anyway, s.
WAIT_LIMIT_S = 300.0


def _warm_partition(model: ShippedModel) -> Any:
    def warm(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import numpy as np

        from pool3.model import IMAGE_SIZE

        start = time.perf_counter()
        featurizer = model.featurizer()
        featurizer.featurize_batch(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32))
        for _ in frames:
            pass
        yield pd.DataFrame({"pid": [os.getpid()], "seconds": [time.perf_counter() - start]})

    return warm


class WarmUp:
    """Build the featurizer in every Python worker in the background (see the module doc).

    Use as a context manager around the driver's own preparations: on a normal exit it waits
    for the warm-up (so that the featurize job finds idle, warm workers instead of starting
    new ones), on an exception it cancels it.
    """

    def __init__(self, spark: SparkSession, model: ShippedModel, *, enabled: bool = True):
        self._spark = spark
        self._model = model
        self._enabled = enabled
        self._tag = f"pool3-warmup-{uuid.uuid4().hex[:12]}"
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.seconds: float | None = None  # driver-side wall time of the warm-up job
        self.workers: list[dict[str, float]] = []
        self.error: str | None = None

    def start(self) -> WarmUp:
        if not self._enabled:
            return self
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="pool3-warmup", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        slots = task_slots(self._spark)
        try:
            with tagged(self._spark, self._tag, "pool3: warm up Python workers"):
                rows = (
                    self._spark.range(0, slots, numPartitions=slots)
                    .mapInPandas(_warm_partition(self._model), "pid long, seconds double")
                    .collect()
                )
            self.workers = [{"pid": r["pid"], "seconds": round(r["seconds"], 3)} for r in rows]
        except Exception as err:  # best effort: the featurize job redoes it and reports
            self.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        finally:
            self.seconds = round(time.perf_counter() - self._started, 3)

    def wait(self, timeout: float = WAIT_LIMIT_S) -> None:
        """Wait for the warm-up; past ``timeout`` cancel it and go on."""
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("worker warm-up still running after %.0f s: cancelled", timeout)
            self.cancel()
            return
        if self.error:
            log.warning("worker warm-up failed (the featurize job retries it): %s", self.error)
        else:
            log.info(
                "warm-up: %d Python workers ready in %.1f s (model build %s s)",
                len(self.workers),
                self.seconds or 0.0,
                ", ".join(f"{w['seconds']:.1f}" for w in self.workers),
            )

    def cancel(self) -> None:
        if self._thread is not None:
            interrupt(self._spark, self._tag)
            self._thread.join(30)

    def __enter__(self) -> WarmUp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.wait()
        else:
            self.cancel()
