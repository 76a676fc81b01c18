"""The CG solve of a Newton step, ``(I + 2C X_A^T X_A) d = -g`` for every running column.

The Hessian product needs only the rows active at ``W``. Where the driver holds them all
(:mod:`.held`), :class:`HeldHessian` multiplies them there: per column over copies of its
own active rows where the columns' rows barely overlap (one-vs-rest near the optimum), else
one matrix product per block for every column. Where it does not, :class:`PassHessian`
makes each product a pass over the table (the distributed fallback), which ships the rows
it finds active, until the driver holds them all and the remaining CG steps run there.
:func:`solve` stops each column at ``|r| <= inner |g|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pool3.training.newton.held import HELD_BLOCK, Held
from pool3.training.newton.passes import (
    Columns,
    Passes,
    Sums,
    _active,
    _in_columns,
    _margins,
    _xt,
    signs,
)


def dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Column-wise dot products of two (n, k) arrays."""
    return np.einsum("ij,ij->j", A, B)


#: the per-column copies of the active rows (the fastest CG products) at most, in MiB
PER_COLUMN_MB = 1024


@dataclass
class HeldState:
    """The held rows at ``W`` for some columns: sums, the active mask (held rows x
    columns), and which held rows are active for some column."""

    sums: Sums
    act: np.ndarray
    any: np.ndarray

    def keep(self, positions: np.ndarray) -> None:
        self.act, self.any = self.act[positions], self.any[positions]


def evaluate_held(held: Held, W: np.ndarray, cols: Columns) -> HeldState:
    """Loss, ``X~^T r`` and active counts at ``W`` over the held rows: the whole table's
    when the store is complete (rows not held are inactive and add nothing)."""
    k = len(cols)
    sums = Sums(loss=np.zeros(k), xtr=np.zeros((held.n_features + 1, k)), active=np.zeros(k))
    acts = []
    for X, y, fold in held.blocks():
        Ys = signs(y, cols.classes)
        Z = _margins(X, W)
        act = _active(Ys, Z, _in_columns(fold, cols))
        R = np.where(act, Z - Ys, np.float32(0))
        sums.loss += np.einsum("ij,ij->j", R, R, dtype=np.float64)
        sums.xtr += _xt(X, R)
        sums.active += act.sum(axis=0)
        acts.append(act)
    act = np.concatenate(acts) if acts else np.zeros((0, k), dtype=bool)
    return HeldState(sums, act, np.asarray(act.any(axis=1)))


class HeldHessian:
    """``P -> P + 2C X~^T (D X~ P)`` over the held rows, ``D`` the active masks of ``state``.

    Where the columns' active rows barely overlap (one-vs-rest near the optimum: each row
    is active for about one class) each column's rows are copied once, and a product costs
    the column's own rows; else one matrix product per block covers every column, each
    keeping its own rows.
    """

    def __init__(self, held: Held, state: HeldState, C: float) -> None:
        self.held, self.C = held, C
        sizes = state.act.sum(axis=0)
        union = int(state.any.sum())
        per_column_mb = float(sizes.sum()) * 4 * held.n_features / 2**20
        self.columns: list[np.ndarray] | None = None
        if union and sizes.sum() <= 2 * union and per_column_mb <= PER_COLUMN_MB:
            self.columns = [
                held.take(np.flatnonzero(state.act[:, j])).copy() for j in range(len(sizes))
            ]
        else:
            positions = np.flatnonzero(state.any)
            masks = state.act[positions]
            self.blocks = [
                (positions[at : at + HELD_BLOCK], masks[at : at + HELD_BLOCK])
                for at in range(0, len(positions), HELD_BLOCK)
            ]

    def __call__(self, P: np.ndarray, live: np.ndarray) -> np.ndarray:
        out = np.zeros_like(P)
        if self.columns is not None:
            for i, j in enumerate(live):
                X = self.columns[j]
                if len(X):
                    out[:, i : i + 1] = _xt(X, _margins(X, P[:, i : i + 1]))
            return P + 2 * self.C * out
        for positions, masks in self.blocks:
            act = masks[:, live]
            rows = act.any(axis=1)
            if not rows.any():
                continue
            if not rows.all():
                positions, act = positions[rows], act[rows]
            X = self.held.take(positions)
            Q = _margins(X, P)
            Q *= act
            out += _xt(X, Q)
        return P + 2 * self.C * out


#: CG iterations per Newton step at most; reached only by pathological data
_MAX_CG = 250


class PassHessian:
    """Hessian products as passes (the fallback) until a pass completes the held rows,
    then over the held rows."""

    def __init__(self, passes: Passes, held: Held, W: np.ndarray, cols: Columns, C: float):
        self.passes, self.held, self.W, self.cols, self.C = passes, held, W, cols, C
        self.local: HeldHessian | None = None
        self.calls = 0

    def __call__(self, P: np.ndarray, live: np.ndarray) -> np.ndarray:
        if self.local is not None:
            return self.local(P, live)
        self.calls += 1
        sums, complete = self.passes.hess(self.W, P, self.cols, live, self.held)
        if complete:
            self.local = HeldHessian(self.held, evaluate_held(self.held, self.W, self.cols), self.C)
        assert sums.hess is not None
        return P + 2 * self.C * sums.hess


def solve(op: PassHessian | HeldHessian, grad: np.ndarray, inner: float) -> tuple[np.ndarray, int]:
    """CG on ``H d = -g`` for every column of ``grad``, each stopped at ``|r| <= inner |g|``.
    Returns ``(d, CG steps)``."""
    R = -grad
    P = R.copy()
    D = np.zeros_like(R)
    rr = dot(R, R)
    stop = inner * inner * rr
    live = rr > 0
    steps = 0
    while steps < _MAX_CG and live.any():
        idx = np.flatnonzero(live)
        steps += 1
        Hp = op(P[:, idx], idx)
        pHp = dot(P[:, idx], Hp)
        alpha = rr[idx] / np.where(pHp > 0, pHp, 1e-300)
        D[:, idx] += alpha * P[:, idx]
        R[:, idx] -= alpha * Hp
        rr_new = dot(R[:, idx], R[:, idx])
        live[idx] = rr_new > stop[idx]
        P[:, idx] = R[:, idx] + (rr_new / np.where(rr[idx] > 0, rr[idx], 1e-300)) * P[:, idx]
        rr[idx] = rr_new
    return D, steps
