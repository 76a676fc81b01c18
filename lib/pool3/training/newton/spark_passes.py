"""The Newton solver's passes over rows cached on the executors (``train.solver = "spark"``).

The usable rows (``id`` a 64-bit hash of the path, ``y`` the class index, ``fold``, the
``is_test`` flag and the float32 ``features``) are coalesced into one partition per task
slot, or per ``PARTITION_ROWS`` rows if that is more, and cached once
as blocks of ``BLOCK_ROWS`` rows, each block one row of binary values: a pass moves a few
large values from the JVM to Python, never 2048 list elements per row. Blocks are
persisted ``DISK_ONLY`` (the executors' local disks and page cache), so the cache takes no
heap and a table larger than the executors' memory still trains.

Each pass (:class:`SparkPasses`, one Spark job) is a ``mapInArrow`` over the training
blocks: a Python worker views a block's bytes as a float32 ``(m, 2048)`` array (no copy),
runs a kernel of :mod:`.passes`, adds up its float64 sums, and *ships* the
rows the kernel found needed that the driver does not hold yet (their ids travel with the
job), at most the driver's per-pass quota (:class:`pool3.training.newton.held.CopyHeld`). The
driver receives ~0.8 MB of sums per partition (``(2049, columns)`` matrices) plus the
shipped rows, as Arrow. Only DataFrame operations (no broadcast, accumulator or RDD), so
it runs over Spark Connect as on Spark Classic.

Once a store holds every training row (the union of the classes' active rows is often the
whole table at tens of thousands of rows), its passes run on the driver over the held rows
(:class:`~.array_passes.ArrayPasses`) instead of as Spark jobs: the same
kernels over the same rows, without a job's fixed cost.

Size (over ~300 lines): one class, the Spark side of a Newton pass: its cached blocks' life
cycle, the pass job and the shipping of new active rows, which share their state.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame

from pool3.errors import DataError
from pool3.storage.files import resolve
from pool3.training.newton.array_passes import ArrayPasses
from pool3.training.newton.held import CopyHeld, Held
from pool3.training.newton.passes import (
    Columns,
    Sums,
    evaluate_block,
    hess_block,
    sample_block,
    scan_block,
)
from pool3.training.newton.spark_blocks import (
    BLOCK_SCHEMA,
    DDL,
    OUT_SCHEMA,
    Outbox,
    each_block,
    packer,
    pass_job,
    read_file,
    unpack_sums,
)
from pool3.training.table.rules import reader_batch

log = logging.getLogger(__name__)

#: rows per partition at most: one task's blocks stay ~128 MB
PARTITION_ROWS = 16384


class SparkPasses:
    """:class:`pool3.training.newton.method.Passes` over the rows of ``frame`` cached as float32
    blocks on the executors; :meth:`close` unpersists them.

    Parameters
    ----------
    frame : DataFrame
        ``id`` (long, unique per row), ``sha`` (long, a hash of the content), ``y`` (int
        class index), ``fold`` (int), ``is_test`` (bool), ``features`` (array<float> of
        ``n_features``).
    partitions : int
        Partitions of the cached blocks (tasks per pass).
    held_mb, ship_mb : float
        The driver's budget for the rows it holds, and what one pass may ship to it
        through the JVMs.
    scratch : str, optional
        A folder (path or URI) that the executors' Python workers and the driver can both
        reach (a run's staging folder, or a local folder in local mode): the passes write
        the rows they ship there as Arrow files, which the driver reads and deletes, so
        one pass may ship as much as the budget holds; deleted by :meth:`close`.
    """

    def __init__(
        self,
        frame: DataFrame,
        *,
        n_features: int,
        n_classes: int,
        partitions: int,
        held_mb: float,
        ship_mb: float,
        scratch: str | None = None,
    ) -> None:
        self.n_features = n_features
        self.n_classes = n_classes
        self.partitions = partitions
        self.held_mb = held_mb
        self.inband_mb = ship_mb  # what one job may return through the JVMs
        self.ship_mb = held_mb if scratch else ship_mb
        self.scratch = scratch
        if scratch:
            where = resolve(scratch)
            where.filesystem().create_dir(where.fs_path, recursive=True)
        self.jobs = 0  # passes, as Passes counts them
        self.spark_jobs = 0  # those that ran as Spark jobs
        self.train_rows: int | None = None  # known after the first job
        self.checked = False
        # coalesced, not shuffled again: the rows arrive from the split's shuffle (or the
        # table's Parquet splits) in about as many partitions or more
        rows = frame.select("id", "sha", "y", "fold", "is_test", "features").coalesce(partitions)
        packed = rows.mapInArrow(packer(n_features), BLOCK_SCHEMA)
        self.blocks = packed.persist(StorageLevel.DISK_ONLY)
        self.train_blocks = self.blocks.filter(~packed["test"])

    def close(self) -> None:
        self.blocks.unpersist()
        if self.scratch:
            where = resolve(self.scratch)
            try:
                where.filesystem().delete_dir(where.fs_path)
            except OSError as err:  # best effort: the run's staging goes with it anyway
                log.warning(
                    "could not remove the training scratch folder %s: %s", self.scratch, err
                )

    def new_held(self) -> Held:
        return CopyHeld(self.n_features, budget_mb=self.held_mb, ship_mb=self.ship_mb)

    def held_rows(self) -> int:
        """Rows the driver's budget holds."""
        return CopyHeld(self.n_features, budget_mb=self.held_mb, ship_mb=0).capacity

    def _pass(
        self,
        kernel: Callable[..., tuple[Sums, np.ndarray]],
        held: Held,
        folds: bool,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[Sums, bool]:
        assert isinstance(held, CopyHeld)
        if held.whole:
            return self._on_driver(kernel, held, folds, args, kwargs)
        first = not self.checked
        if first:  # this job reads the feature table and caches the blocks
            with reader_batch(self.blocks.sparkSession):
                return self._run(kernel, held, folds, first, args, kwargs)
        return self._run(kernel, held, folds, first, args, kwargs)

    def _run(
        self,
        kernel: Callable[..., tuple[Sums, np.ndarray]],
        held: CopyHeld,
        folds: bool,
        first: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Sums, bool]:
        quota = held.quota()
        per_part = quota // self.partitions  # the budget is never exceeded
        run = pass_job(
            kernel, self.n_features, held.sorted_ids(), per_part, folds, args, kwargs,
            with_ids=first, scratch=self.scratch,
        )  # fmt: skip
        self.jobs += 1
        self.spark_jobs += 1
        started = time.perf_counter()
        found = self.train_blocks.mapInArrow(run, OUT_SCHEMA).toArrow()
        took = time.perf_counter() - started
        total, missed, shipped, seen = Sums(), 0, 0, []
        for row in self._shipped(found):
            part = row["part"]
            if part is not None:
                sums, extra = unpack_sums(part)
                total.add(sums)
                seen.append(extra["ids"])
                missed += int(row["missed"])
                continue
            ids = np.frombuffer(row["id"], dtype=np.int64)
            held.add(
                ids,
                np.frombuffer(row["x"], dtype=np.float32).reshape(len(ids), self.n_features),
                np.frombuffer(row["y"], dtype=np.int32),
                np.frombuffer(row["fold"], dtype=np.int32) if folds else None,
            )
            shipped += len(row["x"]) + 16 * len(ids)
        held.received(shipped)
        log.debug(
            "spark pass %d (%s): %.2f s, %.1f MB shipped, %d needed rows left behind",
            self.jobs,
            kernel.__name__,
            took,
            shipped / 2**20,
            missed,
        )
        if first:
            self.checked = True
            ids = np.concatenate(seen) if seen else np.zeros(0, np.int64)
            repeated = len(ids) - len(np.unique(ids))
            if repeated:
                raise DataError(
                    f"{repeated} paths appear in more than one usable row of the feature "
                    "table; a feature table has one row per image: re-featurize into a fresh "
                    "output (or with --mode overwrite) and train again"
                )
            self.train_rows = len(ids)
        if missed == 0 and held.rows() == self.train_rows:
            held.whole = True
            log.info(
                "spark newton: the driver holds all %d training rows after %d Spark jobs; "
                "the next passes run on the driver",
                held.rows(),
                self.spark_jobs,
            )
        return total, missed == 0

    def _on_driver(
        self,
        kernel: Callable[..., tuple[Sums, np.ndarray]],
        held: CopyHeld,
        folds: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Sums, bool]:
        """A pass over the held rows, which are every training row (module docstring)."""
        self.jobs += 1
        m = held.rows()
        fold = held.fold[:m] if folds and held.fold is not None else None
        local = ArrayPasses(held.X[:m], held.y[:m], self.n_classes, fold=fold)
        total, _ = local.run(kernel, local.new_held(), *args, **kwargs)
        return total, True

    def _shipped(self, found: pa.Table) -> Iterator[dict[str, Any]]:
        """The rows a pass returned, and those its tasks wrote to the scratch folder (read
        and deleted here)."""
        for row in found.to_pylist():
            if row["file"]:
                yield from read_file(row["file"]).to_pylist()
            yield row

    def evaluate(
        self, W: np.ndarray, cols: Columns, held: Held, *, g0: bool = False, n_folds: int = 0
    ) -> tuple[Sums, bool]:
        return self._pass(
            evaluate_block, held, cols.folds is not None, _f32(W), cols, g0=g0, n_folds=n_folds
        )

    def scan(
        self, W: np.ndarray, D: np.ndarray, cols: Columns, held: Held, *, end: bool = False
    ) -> tuple[Sums, bool]:
        return self._pass(scan_block, held, cols.folds is not None, _f32(W), _f32(D), cols, end=end)

    def hess(
        self, W: np.ndarray, P: np.ndarray, cols: Columns, live: np.ndarray, held: Held
    ) -> tuple[Sums, bool]:
        return self._pass(hess_block, held, cols.folds is not None, _f32(W), _f32(P), cols, live)

    def jobs_for(self, nbytes: float) -> int:
        """Jobs that :meth:`collect` needs to return ``nbytes`` to the driver: one through
        the scratch folder, else as many as the JVMs' limit per job asks."""
        return 1 if self.scratch else max(1, math.ceil(nbytes / (self.inband_mb * 2**20)))

    def map_rows(
        self,
        fn: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, bytes] | None],
        schema: pa.Schema,
    ) -> pa.Table:
        """``fn(X, ids, sha)`` on every batch of cached blocks, one output row each, as one
        table on the driver (:class:`pool3.duplicates.blocks.CachedRows`)."""
        return self.collect(self.blocks, each_block(fn, self.n_features, schema), schema)

    def collect(
        self,
        frame: DataFrame,
        job: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
        schema: pa.Schema,
    ) -> pa.Table:
        """``frame.mapInArrow(job)`` as one Arrow table on the driver: with a scratch folder
        each task writes its batches to a file there (read and deleted here)."""
        ddl = ", ".join(f"{f.name} {DDL[f.type]}" for f in schema)
        if not self.scratch:
            return frame.mapInArrow(job, ddl).toArrow()
        scratch = self.scratch

        def to_file(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            outbox = Outbox(scratch, schema)
            for batch in job(batches):
                yield from outbox.send(batch)
            yield pa.RecordBatch.from_pydict({"file": [outbox.close()]})

        names = frame.mapInArrow(to_file, "file string").toArrow().column("file").to_pylist()
        parts = [read_file(name) for name in names if name]
        return pa.Table.from_batches(
            [b for part in parts for b in part.to_batches()], schema=schema
        )

    def sample(self, every: int, budget_mb: float) -> CopyHeld:
        """About one training row in ``every``, shipped to a store of its own (one pass)."""
        store = CopyHeld(self.n_features, budget_mb=budget_mb, ship_mb=budget_mb)
        self._pass(sample_block, store, False, every)
        return store


def _f32(A: np.ndarray) -> np.ndarray:
    """What the kernels multiply with: float32 (half the bytes in each job's closure)."""
    return np.ascontiguousarray(A, dtype=np.float32)
