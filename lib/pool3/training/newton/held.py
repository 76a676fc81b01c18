"""The rows the Newton solver holds on the driver, and what it computes from them alone.

The squared hinge's gradient and Hessian at ``W`` involve only the rows *active* at ``W``
(``y w.x~ < 1``); near the optimum a few per cent per class. So once the driver holds every
row active at ``W`` (the store is *complete*), the gradient, the stopping test and every
CG step of the next Newton system need no pass over the table (:mod:`.method`):

- :class:`IndexHeld`: the table is on the driver already (``newton``); the store is the
  index of the needed rows in that array, nothing is copied.
- :class:`CopyHeld`: the table is elsewhere (cached on the executors, ``spark``); the
  passes ship the needed rows here as copies, at most ``ship_mb`` per pass, within a
  budget of ``budget_mb``. Beyond the budget the store stays incomplete and the solver
  computes those steps with distributed passes instead.

:func:`evaluate_held` gives the loss, gradient sums and active masks at ``W`` from the held
rows; :class:`HeldHessian` is the Hessian-vector product of a CG step over them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

#: held rows per block of the local products
HELD_BLOCK = 8192
#: float32 features + id + class + fold, per held row
_ROW_EXTRA = 16

Take = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


class Held:
    """The driver's store of needed rows (see the module docstring)."""

    n_features: int

    def rows(self) -> int:
        raise NotImplementedError

    def nbytes(self) -> int:
        return self.rows() * (4 * self.n_features + _ROW_EXTRA)

    def blocks(
        self, subset: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(X, y, fold)`` of the held rows (``subset``: positions among them), in order,
        ``HELD_BLOCK`` rows at a time."""
        raise NotImplementedError

    def keep(self, positions: np.ndarray) -> None:
        """Keep only the held rows at ``positions`` (sorted)."""
        raise NotImplementedError

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The features of the held rows at ``positions`` (sorted): a view where they are
        consecutive rows, else a copy."""
        raise NotImplementedError

    def trim(self) -> bool:
        """Whether to drop the rows no column needs any more (kept while there is room,
        so that rows that come and go are not shipped again)."""
        return True

    def shipment(self) -> Shipment:
        raise NotImplementedError


class Shipment:
    """The needed rows one pass offers the store, block by block."""

    def offer(self, ids: np.ndarray, take: Take) -> None:
        raise NotImplementedError

    def close(self) -> bool:
        """Whether the store now holds every needed row the pass offered."""
        raise NotImplementedError


def _run_or_index(idx: np.ndarray) -> slice | np.ndarray:
    """A slice where ``idx`` (sorted) is a run of consecutive rows (a view, not a copy)."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


class IndexHeld(Held):
    """Needed rows of an array the driver has already: their index, nothing copied."""

    def __init__(self, X: np.ndarray, y: np.ndarray, fold: np.ndarray | None) -> None:
        self.X, self.y, self.fold = X, y, fold
        self.n_features = X.shape[1]
        self.index = np.arange(len(X))

    def rows(self) -> int:
        return len(self.index)

    def nbytes(self) -> int:
        return 8 * len(self.index)  # the rows themselves are the table's

    def blocks(
        self, subset: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        index = self.index if subset is None else self.index[subset]
        for start in range(0, len(index), HELD_BLOCK):
            sel = _run_or_index(index[start : start + HELD_BLOCK])
            yield self.X[sel], self.y[sel], None if self.fold is None else self.fold[sel]

    def keep(self, positions: np.ndarray) -> None:
        self.index = self.index[positions]

    def take(self, positions: np.ndarray) -> np.ndarray:
        return self.X[_run_or_index(self.index[positions])]

    def shipment(self) -> Shipment:
        return _IndexShipment(self)


class _IndexShipment(Shipment):
    def __init__(self, store: IndexHeld) -> None:
        self.store = store
        self.found: list[np.ndarray] = []

    def offer(self, ids: np.ndarray, take: Take) -> None:
        self.found.append(ids)

    def close(self) -> bool:
        self.store.index = np.concatenate(self.found) if self.found else np.zeros(0, np.int64)
        return True


class CopyHeld(Held):
    """Copies of needed rows shipped from elsewhere, within ``budget_mb``, at most
    ``ship_mb`` per pass; rows are identified by a 64-bit id."""

    def __init__(self, n_features: int, *, budget_mb: float, ship_mb: float) -> None:
        self.n_features = n_features
        row = 4 * n_features + _ROW_EXTRA
        self.capacity = max(int(budget_mb * 2**20 // row), 0)
        self.per_pass = max(int(ship_mb * 2**20 // row), 0)
        self.X = np.empty((0, n_features), np.float32)
        self.y = np.empty(0, np.int32)
        self.fold: np.ndarray | None = None
        self.ids = np.empty(0, np.int64)
        self.m = 0
        self.peak_rows = 0
        self.shipped_bytes = 0
        self.largest_pass_bytes = 0
        #: every row taking part is held (the passes may then run here): none is dropped
        self.whole = False
        self._sorted: np.ndarray | None = None

    def rows(self) -> int:
        return self.m

    def quota(self) -> int:
        """Rows the next pass may ship: the pass limit, within what the budget leaves."""
        return max(min(self.per_pass, self.capacity - self.m), 0)

    def sorted_ids(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(self.ids[: self.m])
        return self._sorted

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids),) bool: which of ``ids`` are held."""
        known = self.sorted_ids()
        if not len(known):
            return np.zeros(len(ids), dtype=bool)
        at = np.searchsorted(known, ids).clip(0, len(known) - 1)
        return known[at] == ids

    def add(self, ids: np.ndarray, X: np.ndarray, y: np.ndarray, fold: np.ndarray | None) -> None:
        n = len(ids)
        if not n:
            return
        if self.m + n > len(self.X):
            size = max(self.m + n, min(2 * len(self.X), self.capacity), 1024)
            grown = np.empty((size, self.n_features), np.float32)
            grown[: self.m] = self.X[: self.m]
            self.X = grown
            self.y = np.resize(self.y, size)
            self.ids = np.resize(self.ids, size)
            if fold is not None or self.fold is not None:
                self.fold = np.resize(self.fold if self.fold is not None else np.zeros(0), size)
        self.X[self.m : self.m + n] = X
        self.y[self.m : self.m + n] = y
        self.ids[self.m : self.m + n] = ids
        if self.fold is not None:
            self.fold[self.m : self.m + n] = 0 if fold is None else fold
        self.m += n
        self.peak_rows = max(self.peak_rows, self.m)
        self._sorted = None

    def blocks(
        self, subset: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        if subset is None:
            for start in range(0, self.m, HELD_BLOCK):
                stop = min(start + HELD_BLOCK, self.m)
                fold = None if self.fold is None else self.fold[start:stop]
                yield self.X[start:stop], self.y[start:stop], fold
            return
        for start in range(0, len(subset), HELD_BLOCK):
            idx = subset[start : start + HELD_BLOCK]
            yield self.X[idx], self.y[idx], None if self.fold is None else self.fold[idx]

    def take(self, positions: np.ndarray) -> np.ndarray:
        return self.X[: self.m][_run_or_index(positions)]

    def keep(self, positions: np.ndarray) -> None:
        n = len(positions)
        self.X[:n] = self.X[positions]
        self.y[:n] = self.y[positions]
        self.ids[:n] = self.ids[positions]
        if self.fold is not None:
            self.fold[:n] = self.fold[positions]
        self.m = n
        self._sorted = None

    def trim(self) -> bool:
        return not self.whole and self.m > self.capacity // 2

    def received(self, nbytes: int) -> None:
        """Count a pass's shipped bytes."""
        self.shipped_bytes += nbytes
        self.largest_pass_bytes = max(self.largest_pass_bytes, nbytes)

    def shipment(self) -> Shipment:
        return _CopyShipment(self)


class _CopyShipment(Shipment):
    """The in-memory stand-in for what :mod:`.spark_passes` does on the executors."""

    def __init__(self, store: CopyHeld) -> None:
        self.store, self.left, self.missed, self.bytes = store, store.quota(), 0, 0

    def offer(self, ids: np.ndarray, take: Take) -> None:
        missing = np.flatnonzero(~self.store.holds(ids))
        sent = missing[: self.left]
        self.missed += len(missing) - len(sent)
        if len(sent):
            X, y, fold = take(sent)
            self.store.add(ids[sent], X, y, fold)
            self.left -= len(sent)
            self.bytes += X.nbytes + 13 * len(sent)

    def close(self) -> bool:
        self.store.received(self.bytes)
        return self.missed == 0
