""":class:`ArrayPasses`: the Newton solver's passes over an in-memory float32 array (``newton``).

Each pass runs a kernel of :mod:`.passes` over the array's blocks; the rows it finds needed
go to the driver's store (:mod:`.held`): on the driver an index into the array
(:class:`~.held.IndexHeld`, nothing copied), or, given a budget, copies of the
rows within it, as the Spark passes ship them (the distributed protocol run in memory, for
tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pool3.training.newton.held import CopyHeld, Held, IndexHeld
from pool3.training.newton.passes import (
    BLOCK_ROWS,
    Columns,
    Sums,
    evaluate_block,
    hess_block,
    scan_block,
)


def _taker(
    X: np.ndarray, y: np.ndarray, fold: np.ndarray | None, pos: np.ndarray
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """The rows ``pos[sel]`` of a block as ``(X, y, fold)`` copies, made only when asked."""

    def take(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        rows = pos[sel]
        return X[rows], y[rows], None if fold is None else fold[rows]

    return take


class ArrayPasses:
    """The passes over rows of an in-memory float32 array (the ``newton`` solver).

    Parameters
    ----------
    X : ndarray of shape (n, d), float32, C-contiguous
        Not copied: each pass reads it in blocks of ``block_rows``.
    y : ndarray of shape (n,), int
        Class index of each row, in ``[0, n_classes)``.
    n_classes : int
    fold : ndarray of shape (n,), int, optional
        Cross-validation fold of each row (:class:`Columns` with folds).
    rows : ndarray of shape (n,), bool, optional
        Only these rows take part (e.g. a cross-validation fold fitted alone).
    held_mb : float, optional
        None (default): the driver holds every row, as the array is here already, and the
        solver reads the needed ones in place (:class:`pool3.training.newton.held.IndexHeld`).
        A number: the rows the solver needs are copied into a store of that size, as
        :class:`~.spark_passes.SparkPasses` ships them, with at most
        ``ship_mb`` per pass: the distributed protocol run in memory (tests, benchmarks).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        *,
        fold: np.ndarray | None = None,
        rows: np.ndarray | None = None,
        block_rows: int = BLOCK_ROWS,
        held_mb: float | None = None,
        ship_mb: float = 256.0,
    ) -> None:
        if X.dtype != np.float32 or not X.flags.c_contiguous:
            raise ValueError(
                f"ArrayPasses needs a C-contiguous float32 array, got {X.dtype} "
                f"(contiguous={X.flags.c_contiguous}); read features with "
                "pool3.training.table.data so that no copy is made"
            )
        self.X = X
        self.y = np.asarray(y, dtype=np.int32)
        self.fold = None if fold is None else np.asarray(fold, dtype=np.int32)
        self.n_classes = n_classes
        self.n_features = X.shape[1]
        self.rows = rows
        self.block_rows = block_rows
        self.held_mb = held_mb
        self.ship_mb = ship_mb
        self.jobs = 0

    def new_held(self) -> Held:
        if self.held_mb is None:
            return IndexHeld(self.X, self.y, self.fold)
        return CopyHeld(self.n_features, budget_mb=self.held_mb, ship_mb=self.ship_mb)

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]]:
        """``(X, y, fold, index)`` per block of the rows taking part (``index`` into X)."""
        for start in range(0, len(self.X), self.block_rows):
            index = np.arange(start, min(start + self.block_rows, len(self.X)))
            if self.rows is not None:
                index = index[self.rows[start : start + self.block_rows]]
                if not len(index):
                    continue
            whole = len(index) == self.block_rows or index[-1] - index[0] + 1 == len(index)
            sl = slice(index[0], index[-1] + 1) if whole else index
            fold = None if self.fold is None else self.fold[sl]
            yield self.X[sl], self.y[sl], fold, index

    def run(
        self, kernel: Callable[..., tuple[Sums, np.ndarray]], held: Held, *args: Any, **kw: Any
    ) -> tuple[Sums, bool]:
        """Run ``kernel`` over every block; the needed rows go to ``held``. Returns the sums
        and whether ``held`` now has every needed row."""
        self.jobs += 1
        total = Sums()
        shipment = held.shipment()
        for X, y, fold, index in self._blocks():
            sums, needed = kernel(X, y, fold, *args, **kw)
            total.add(sums)
            pos = np.flatnonzero(needed)
            shipment.offer(index[pos], _taker(X, y, fold, pos))
        return total, shipment.close()

    def evaluate(
        self, W: np.ndarray, cols: Columns, held: Held, *, g0: bool = False, n_folds: int = 0
    ) -> tuple[Sums, bool]:
        return self.run(evaluate_block, held, W, cols, g0=g0, n_folds=n_folds)

    def scan(
        self, W: np.ndarray, D: np.ndarray, cols: Columns, held: Held, *, end: bool = False
    ) -> tuple[Sums, bool]:
        return self.run(scan_block, held, W, D, cols, end=end)

    def hess(
        self, W: np.ndarray, P: np.ndarray, cols: Columns, live: np.ndarray, held: Held
    ) -> tuple[Sums, bool]:
        return self.run(hess_block, held, W, P, cols, live)
