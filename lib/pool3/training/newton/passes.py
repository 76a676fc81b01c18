"""What one pass over the training rows computes, block by block, for :mod:`.method`.

The Newton solver (:mod:`.method`) touches the full table only through three passes, each
computed per block of rows (``X`` (m, d) float32, ``y`` (m,) class indices, ``fold`` (m,)
cross-validation folds) and summed in float64 over blocks:

- :func:`evaluate_block`: at ``W``, the loss, ``X~^T r`` (the data part of the gradient)
  and the active rows of every column, with the validation accuracy of each fold;
- :func:`scan_block`: along a Newton direction ``D``, the objective's change at every step
  size (the line search) from one product ``X [W | D]``, and the rows active at ``W`` or
  at ``W + D``: every row active anywhere on the segment, since a row's margin is linear
  in the step (so the driver can take any step of it from the rows it holds);
- :func:`hess_block`: the Hessian products of a CG step, for when the driver cannot hold
  the active rows (the distributed fallback).

Each also returns which rows are *needed* (active somewhere for some column): a pass over
data the driver does not hold ships those rows to it (:mod:`.held`, :mod:`.spark_passes`).
:class:`ArrayPasses` runs the passes over an in-memory array on the driver (``newton``);
:class:`pool3.training.newton.spark_passes.SparkPasses` over float32 blocks cached on the
executors (``spark``): one algorithm, two ways to make a pass.

Columns (:class:`Columns`): the problems fitted at once. Column ``j`` is class
``classes[j]`` one-vs-rest, over the rows whose fold is not ``folds[j]`` (``-1``: every row);
cross-validation fits every fold's classes as columns of one ``W``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pool3.training.newton.held import Held

#: Step sizes one scan evaluates for the Newton line search (1, 1/2, ..., 2^-19):
#: liblinear's newton.cpp halves the step up to 20 times too (10 gave up on wide tables)
STEP_SIZES = 0.5 ** np.arange(20)

#: Rows per block: the products of a block (rows x 2 x columns) stay in cache-sized pieces.
BLOCK_ROWS = 4096


@dataclass(frozen=True)
class Columns:
    """The one-vs-rest problems fitted at once (see the module docstring).

    ``classes`` (k,) int: the positive class of each column; ``folds`` (k,) int or None: the
    fold each column leaves out (-1 none); None when no column leaves one out.
    """

    classes: np.ndarray
    folds: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.classes)

    def take(self, idx: np.ndarray) -> Columns:
        return Columns(self.classes[idx], None if self.folds is None else self.folds[idx])

    @classmethod
    def one_vs_rest(cls, n_classes: int) -> Columns:
        return cls(np.arange(n_classes, dtype=np.int32))

    @classmethod
    def cross_validation(cls, n_classes: int, n_folds: int) -> Columns:
        """Every fold's classes: column ``f * n_classes + k`` is class ``k`` without fold ``f``."""
        return cls(
            np.tile(np.arange(n_classes, dtype=np.int32), n_folds),
            np.repeat(np.arange(n_folds, dtype=np.int32), n_classes),
        )


def signs(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(m, k) float32: +1 where a row belongs to ``classes[j]``, else -1."""
    return np.where(y[:, None] == classes[None, :], np.float32(1), np.float32(-1))


def _in_columns(fold: np.ndarray | None, cols: Columns) -> np.ndarray | None:
    """(m, k) bool: the rows each column fits on; None when every row is in every column."""
    if cols.folds is None or fold is None:
        return None
    return fold[:, None] != cols.folds[None, :]


def _margins(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``X~ W`` (m, k) float32 for ``x~ = (x, 1)``, ``W`` (d + 1, k)."""
    d = X.shape[1]
    Z = X @ np.ascontiguousarray(W[:d], dtype=np.float32)
    Z += W[d].astype(np.float32)
    return Z


def _active(Ys: np.ndarray, Z: np.ndarray, M: np.ndarray | None) -> np.ndarray:
    act = Ys * Z < 1
    return act if M is None else act & M


def _xt(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``X~^T R`` (d + 1, k) float64 of one block."""
    out = np.empty((X.shape[1] + 1, R.shape[1]))
    out[:-1] = X.T @ R
    out[-1] = R.sum(axis=0, dtype=np.float64)
    return out


@dataclass
class Sums:
    """What a pass adds up over blocks; fields a pass does not compute stay None."""

    loss: np.ndarray | None = None  # (k,) sum of c_i r_i^2
    xtr: np.ndarray | None = None  # (d + 1, k) X~^T (c r)
    active: np.ndarray | None = None  # (k,) active rows
    rows: np.ndarray | None = None  # (k,) rows in each column
    positives: np.ndarray | None = None  # (k,) of them in the column's class
    g0: np.ndarray | None = None  # (d + 1, k) X~^T (c y): the gradient at w = 0 is -2C g0
    delta: np.ndarray | None = None  # (len(STEP_SIZES), k) loss change along D
    hess: np.ndarray | None = None  # (d + 1, k) X~^T (D X~ P)
    correct: np.ndarray | None = None  # (n_folds,) validation rows predicted right
    val_rows: np.ndarray | None = None  # (n_folds,) validation rows

    def add(self, other: Sums) -> Sums:
        for name, value in vars(other).items():
            if value is None:
                continue
            mine = getattr(self, name)
            setattr(self, name, np.array(value, dtype=np.float64) if mine is None else mine + value)
        return self


def evaluate_block(
    X: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray | None,
    W: np.ndarray,
    cols: Columns,
    *,
    g0: bool = False,
    n_folds: int = 0,
) -> tuple[Sums, np.ndarray]:
    """At ``W``: loss, ``X~^T r``, active and row counts per column (``g0``: also the sums
    that give the gradient at ``w = 0``); with ``n_folds``, each fold's validation rows
    and how many of them the fold's columns (classes in order) predict right. Returns the
    sums and the rows active for some column."""
    Ys = signs(y, cols.classes)
    M = _in_columns(fold, cols)
    Z = _margins(X, W)
    act = _active(Ys, Z, M)
    R = np.where(act, Z - Ys, np.float32(0))
    inside = np.full(len(cols), float(len(y))) if M is None else M.sum(axis=0, dtype=np.float64)
    pos = Ys > 0 if M is None else (Ys > 0) & M
    sums = Sums(
        loss=np.einsum("ij,ij->j", R, R, dtype=np.float64),
        xtr=_xt(X, R),
        active=act.sum(axis=0, dtype=np.float64),
        rows=inside,
        positives=pos.sum(axis=0, dtype=np.float64),
    )
    if g0:
        sums.g0 = _xt(X, Ys if M is None else np.where(M, Ys, np.float32(0)))
    if n_folds and fold is not None and cols.folds is not None:
        correct, total = np.zeros(n_folds), np.zeros(n_folds)
        for f in range(n_folds):
            mine, rows = np.flatnonzero(cols.folds == f), fold == f
            if len(mine) and rows.any():
                pred = cols.classes[mine][np.argmax(Z[np.ix_(rows, mine)], axis=1)]
                correct[f] = np.count_nonzero(pred == y[rows])
                total[f] = np.count_nonzero(rows)
        sums.correct, sums.val_rows = correct, total
    return sums, np.asarray(act.any(axis=1))


def scan_block(
    X: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray | None,
    W: np.ndarray,
    D: np.ndarray,
    cols: Columns,
    *,
    end: bool = False,
) -> tuple[Sums, np.ndarray]:
    """Along ``D`` from ``W``: the loss change at every step size (``delta``), exact in
    float64 row by row (a decrease far below float32's resolution of the loss is still
    seen); with ``end`` also the loss, ``X~^T r`` and active counts at ``W + D``. Returns
    the sums and the rows active at ``W`` or ``W + D`` for some column: only they can be
    active anywhere on the segment, and only their hinges change with the step."""
    k = len(cols)
    Ys = signs(y, cols.classes)
    M = _in_columns(fold, cols)
    ZS = _margins(X, np.concatenate([W, D], axis=1))
    Z0, dZ = ZS[:, :k], ZS[:, k:]
    Z1 = Z0 + dZ
    act0, act1 = _active(Ys, Z0, M), _active(Ys, Z1, M)
    touched = act0 | act1
    needed = np.asarray(touched.any(axis=1))
    delta = np.zeros((len(STEP_SIZES), k))
    if needed.any():
        Yn = Ys[needed].astype(np.float64)
        old = Z0[needed].astype(np.float64)
        dz = dZ[needed].astype(np.float64)
        keep = touched[needed]
        h_old = np.where(keep, np.maximum(0.0, 1.0 - Yn * old), 0.0)
        base = np.einsum("ij,ij->j", h_old, h_old)
        for j, t in enumerate(STEP_SIZES):
            h_new = np.where(keep, np.maximum(0.0, 1.0 - Yn * (old + t * dz)), 0.0)
            delta[j] = np.einsum("ij,ij->j", h_new, h_new) - base
    sums = Sums(delta=delta)
    if end:
        R = np.where(act1, Z1 - Ys, np.float32(0))
        sums.loss = np.einsum("ij,ij->j", R, R, dtype=np.float64)
        sums.xtr = _xt(X, R)
        sums.active = act1.sum(axis=0, dtype=np.float64)
    return sums, needed


def hess_block(
    X: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray | None,
    W: np.ndarray,
    P: np.ndarray,
    cols: Columns,
    live: np.ndarray,
) -> tuple[Sums, np.ndarray]:
    """``X~^T (D X~ P)`` for the columns ``live`` (indices into ``cols``; ``P`` has one
    column each), ``D`` the rows active at ``W``; needed: the rows active at ``W`` for
    any column of ``cols``."""
    act = _active(signs(y, cols.classes), _margins(X, W), _in_columns(fold, cols))
    needed = np.asarray(act.any(axis=1))
    return Sums(hess=active_product(X, act[:, live], P)), needed


def sample_block(
    X: np.ndarray, y: np.ndarray, fold: np.ndarray | None, every: int
) -> tuple[Sums, np.ndarray]:
    """Every ``every``-th row of a block, as needed rows (a pass that ships a sample): the
    rows arrive in the order of the split's hash, unrelated to their class."""
    return Sums(), np.arange(len(y)) % every == 0


def active_product(X: np.ndarray, active: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``X~^T (D X~ P)`` of one block, ``active`` (m, k) the rows ``D`` keeps per column."""
    out = np.zeros((X.shape[1] + 1, P.shape[1]))
    rows = active.any(axis=1)
    if not rows.any():
        return out
    Xa = X[rows] if not rows.all() else X
    Q = _margins(Xa, P)
    Q *= active[rows]
    return _xt(Xa, Q)


class Passes(Protocol):
    """Full passes over the training rows (:class:`~.passes.ArrayPasses`,
    :class:`~.spark_passes.SparkPasses`). Each returns its sums and whether
    ``held`` now holds every row the pass found needed; ``jobs`` counts the passes."""

    n_features: int
    n_classes: int
    jobs: int

    def new_held(self) -> Held: ...

    def evaluate(
        self, W: np.ndarray, cols: Columns, held: Held, *, g0: bool = False, n_folds: int = 0
    ) -> tuple[Sums, bool]: ...

    def scan(
        self, W: np.ndarray, D: np.ndarray, cols: Columns, held: Held, *, end: bool = False
    ) -> tuple[Sums, bool]: ...

    def hess(
        self, W: np.ndarray, P: np.ndarray, cols: Columns, live: np.ndarray, held: Held
    ) -> tuple[Sums, bool]: ...
