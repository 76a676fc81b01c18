""":class:`pool3.training.newton.Passes` over training rows cached on the executors.

``train.solver = "spark"`` runs :func:`pool3.training.newton.fit_newton`, the driver
solver's iterations, with every pass one Spark job. The training rows (``y`` a class
index, ``features`` the float32 array column) are repartitioned (one partition per task
slot, or per ``PARTITION_ROWS`` rows if that is more) and cached once as float32 blocks of
``BLOCK_ROWS`` rows, each block one row of two binary values. Each pass is a
``mapInArrow`` over the blocks: a Python worker views each block's bytes as a float32
``(m, 2048)`` array (no copy, no per-row object), runs the block kernels of
:mod:`pool3.training.passes` and returns one small row of float64 partial sums
(``(2049, classes)`` matrices, ~0.8 MB at 48 classes; the Gram matrix is not gathered);
the driver adds them, so the driver receives ~0.8 MB x partitions per pass (mind
``spark.driver.maxResultSize`` beyond ~1000 partitions). The weights travel to the
workers in the job's function (~0.4 MB). Only DataFrame operations are used (no
broadcast, accumulator or RDD), so it runs over Spark Connect as on Spark Classic.

The executors hold the blocks as Spark caches them (4 bytes a value, spilled to disk when
memory is short); nothing the size of the table reaches the driver.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.config import TrainParams
from pool3.connect import task_slots
from pool3.training.c_search import numeric_C
from pool3.training.newton import fit_newton
from pool3.training.passes import STEP_SIZES, class_sums, hess_block, loss_grad_block
from pool3.training.rules import TrainingTable
from pool3.training.solvers import Fitted

log = logging.getLogger(__name__)

_PART_SCHEMA = "part binary"
#: training rows per cached block (one binary value of 2048 x 4 x this bytes: 8 MB)
BLOCK_ROWS = 1024
#: training rows per partition at most: one Arrow batch of its blocks stays ~128 MB
PARTITION_ROWS = 16384


def _pack(arrays: tuple[np.ndarray, ...]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, *arrays)
    return buf.getvalue()


def _unpack(raw: bytes) -> tuple[np.ndarray, ...]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return tuple(npz[f"arr_{i}"] for i in range(len(npz.files)))


def _rows(batch: pa.RecordBatch, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch of ``y, features`` rows as ``(X (m, d) float32, y (m,) int32)``."""
    flat = pc.list_flatten(batch.column("features")).to_numpy(zero_copy_only=False)
    X = np.ascontiguousarray(flat, dtype=np.float32).reshape(-1, n_features)
    return X, batch.column("y").to_numpy(zero_copy_only=False).astype(np.int32)


def _packer(n_features: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Rows to cached blocks: ``BLOCK_ROWS`` rows per row, ``x`` their float32 bytes."""
    schema = pa.schema([("y", pa.binary()), ("x", pa.binary())])

    def pack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            X, y = _rows(batch, n_features)
            for start in range(0, len(X), BLOCK_ROWS):
                stop = start + BLOCK_ROWS
                yield pa.RecordBatch.from_pydict(
                    {"y": [y[start:stop].tobytes()], "x": [X[start:stop].tobytes()]}, schema
                )

    return pack


def _blocks(batch: pa.RecordBatch, n_features: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The cached blocks of a batch as ``(X, y)`` arrays over its buffers (no copy)."""
    for y, x in zip(batch.column("y"), batch.column("x"), strict=True):
        X = np.frombuffer(x.as_buffer(), dtype=np.float32).reshape(-1, n_features)
        yield X, np.frombuffer(y.as_buffer(), dtype=np.int32)


def _job(
    kernel: Callable[..., tuple[np.ndarray, ...]], n_features: int, args: tuple[Any, ...]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function one pass runs on each partition: the kernel's sums over its batches."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        total: list[np.ndarray] | None = None
        for batch in batches:
            for X, y in _blocks(batch, n_features):
                parts = kernel(X, y, *args)
                if total is None:
                    total = [np.array(p, dtype=np.float64) for p in parts]
                else:
                    for t, p in zip(total, parts, strict=True):
                        t += p
        if total is not None:
            yield pa.RecordBatch.from_pydict({"part": [_pack(tuple(total))]})

    return run


class SparkPasses:
    """The training rows of ``frame`` (``y`` int, ``features`` array<float>), cached as
    float32 blocks in ``partitions`` partitions; :meth:`close` unpersists them.

    Each cached row is a block of ``BLOCK_ROWS`` rows as two binary values (``y`` int32,
    ``x`` float32 bytes): a pass moves a few large values from the JVM to Python, not
    2048 list elements per row.
    """

    def __init__(self, frame: DataFrame, *, n_features: int, n_classes: int, partitions: int):
        self.n_features = n_features
        self.n_classes = n_classes
        self.partitions = partitions
        self.jobs = 0
        rows = frame.select("y", "features").repartition(partitions)
        packed = rows.mapInArrow(_packer(n_features), "y binary, x binary")
        self.rows = packed.persist(StorageLevel.MEMORY_AND_DISK)

    def close(self) -> None:
        self.rows.unpersist()

    def _sum(self, kernel: Callable[..., tuple[np.ndarray, ...]], *args: Any) -> list[np.ndarray]:
        run = _job(kernel, self.n_features, args)
        self.jobs += 1
        # Arrow, not pickled rows: the JVM holds each partial sum once, as bytes
        found = self.rows.mapInArrow(run, _PART_SCHEMA).toArrow()
        parts = [_unpack(raw.as_py()) for raw in found.column("part")]
        if not parts:
            raise ValueError("the training rows are empty")
        return [np.sum([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]

    def gram(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(G, S, counts)`` with ``G`` left empty (0, 0): a 2049 x 2049 partial sum per
        partition would be 33 MB each through the JVM, and only the (unused)
        preconditioner needs it."""
        S, counts = self._sum(class_sums, self.n_classes)
        return np.zeros((0, 0)), S, counts

    def loss_grad(
        self, W: np.ndarray, classes: np.ndarray, S: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        loss, delta, out, active = self._sum(loss_grad_block, W, classes, S)
        return loss, delta.reshape(len(STEP_SIZES), len(classes)), out, active

    def hess(self, W: np.ndarray, P: np.ndarray, classes: np.ndarray) -> np.ndarray:
        (out,) = self._sum(hess_block, W, P, classes)
        return out


def train_rows(data: TrainingTable, classes: list[str]) -> DataFrame:
    """Training rows as ``y`` (the label's index in ``classes``, int) and ``features``."""
    index = F.create_map(*[x for i, c in enumerate(classes) for x in (F.lit(c), F.lit(i))])
    return data.frame.filter(~F.col("is_test") & F.col("label").isin(classes)).select(
        index[F.col("label")].cast("int").alias("y"), "features"
    )


def fit_spark_newton(data: TrainingTable, params: TrainParams) -> Fitted:
    """:func:`pool3.training.newton.fit_newton` with one Spark job per pass."""
    classes = data.train_classes
    spark = data.frame.sparkSession
    slots = max(task_slots(spark), -(-data.n_train // PARTITION_ROWS))
    passes = SparkPasses(
        train_rows(data, classes),
        n_features=data.n_features,
        n_classes=len(classes),
        partitions=slots,
    )
    try:
        fit = fit_newton(passes, C=numeric_C(params), tol=params.tol, max_iter=params.max_iter)
    finally:
        passes.close()
    log.info(
        "spark newton: %d passes (Spark jobs) over %d rows in %d partitions, %d Newton "
        "steps, %.1f s, converged=%s",
        fit.passes,
        data.n_train,
        slots,
        fit.newton_iters,
        fit.seconds,
        fit.converged,
    )
    return Fitted.from_newton(
        fit,
        classes,
        estimator=f"newton (float32, Spark, {slots} partitions)",
        max_iter=params.max_iter,
        partitions=slots,
    )
