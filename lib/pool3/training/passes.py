"""The sums one pass over training rows computes, block by block, for :mod:`.newton`.

The kernels take one block of rows (``X`` (m, d) float32, ``y`` (m,) class indices) and
return float64 partial sums; a pass adds them up over blocks. :class:`ArrayPasses` runs
them over an in-memory array on the driver (a Spark version over cached blocks is not
written yet). Products are float32 matrix products (BLAS) of one block at a time; sums
across blocks are float64, so rounding does not grow with the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Step sizes one loss pass evaluates for the Newton line search (1, 1/2, ..., 2^-19):
#: liblinear's newton.cpp halves the step up to 20 times too (10 gave up on wide tables)
STEP_SIZES = 0.5 ** np.arange(20)

#: Rows per block: the products of a block (rows x 2 x classes) stay in cache-sized pieces.
BLOCK_ROWS = 4096


def signs(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(m, k) float32: +1 where a row belongs to ``classes[j]``, else -1."""
    return np.where(y[:, None] == classes[None, :], np.float32(1), np.float32(-1))


def gram_block(
    X: np.ndarray, y: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X~^T X~, per-class sums of x~, per-class counts)`` of one block, ``x~ = (x, 1)``."""
    d = X.shape[1]
    G = np.empty((d + 1, d + 1))
    G[:d, :d] = X.T @ X
    col = X.sum(axis=0, dtype=np.float64)
    G[d, :d] = col
    G[:d, d] = col
    G[d, d] = len(X)
    S, counts = class_sums(X, y, n_classes)
    return G, S, counts


def class_sums(X: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(per-class sums of x~ (d+1, n_classes), per-class counts)`` of one block."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    onehot = np.zeros((len(y), n_classes), dtype=np.float32)
    onehot[np.arange(len(y)), y] = 1
    S = np.empty((X.shape[1] + 1, n_classes))
    S[:-1] = X.T @ onehot
    S[-1] = counts
    return S, counts


def loss_grad_block(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, classes: np.ndarray, S: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class at ``W + S``: ``sum r^2``, its change from ``W``, ``X~^T r``, active rows.

    ``r = z - y`` where ``y z < 1``. The change, (len(STEP_SIZES), k), is the loss at
    ``W + t S`` minus the loss at ``W`` for every step size ``t``, summed row by row in
    float64 from ``X W`` and ``X S`` (not as a difference of two float32 losses), so a step
    that lowers the objective by far less than float32's resolution of it is still seen.
    """
    d, k = X.shape[1], len(classes)
    Ys = signs(y, classes)
    if S is None:
        Z = X @ W[:d]
        Z += W[d]
        delta = np.zeros((len(STEP_SIZES), k))
    else:
        ZS = X @ np.concatenate([W[:d], S[:d]], axis=1)
        old = ZS[:, :k].astype(np.float64)
        old += W[d]
        dz = ZS[:, k:].astype(np.float64)
        dz += S[d]
        h_old = np.maximum(0.0, 1.0 - Ys * old)
        base = np.einsum("ij,ij->j", h_old, h_old)
        delta = np.empty((len(STEP_SIZES), k))
        for j, t in enumerate(STEP_SIZES):
            h_new = np.maximum(0.0, 1.0 - Ys * (old + t * dz))
            delta[j] = np.einsum("ij,ij->j", h_new, h_new) - base
        Z = (old + dz).astype(np.float32)
    R = Z - Ys
    R[Ys * Z >= 1] = 0
    out = np.empty((d + 1, k))
    out[:d] = X.T @ R
    out[d] = R.sum(axis=0, dtype=np.float64)
    loss = np.einsum("ij,ij->j", R, R, dtype=np.float64)
    return loss, delta, out, np.count_nonzero(R, axis=0).astype(np.float64)


def active_product(X: np.ndarray, active: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``X~^T (D X~ P)`` of one block, ``active`` (m, k) the rows ``D`` keeps per class."""
    d = X.shape[1]
    out = np.zeros((d + 1, P.shape[1]))
    rows = active.any(axis=1)
    if not rows.any():
        return out
    Xa = X[rows]
    Q = Xa @ P[:d]
    Q += P[d]
    Q *= active[rows]
    out[:d] = Xa.T @ Q
    out[d] = Q.sum(axis=0, dtype=np.float64)
    return out


def active_rows(X: np.ndarray, y: np.ndarray, W: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(m, k) bool: the rows of a block where class ``classes[j]``'s hinge is active at W."""
    d = X.shape[1]
    return signs(y, classes) * (X @ W[:d] + W[d]) < 1


def hess_block(
    X: np.ndarray, y: np.ndarray, W: np.ndarray, P: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray]:
    """``(X~^T (D X~ P),)`` of one block, finding its active rows at ``W`` first."""
    return (active_product(X, active_rows(X, y, W, classes), P),)


class ArrayPasses:
    """:class:`pool3.training.newton.Passes` over rows of an in-memory float32 array.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32, C-contiguous
        Not copied: each pass reads it in blocks of ``block_rows``.
    y : ndarray of shape (n,), int
        Class index of each row, in ``[0, n_classes)``.
    n_classes : int
    rows : ndarray of shape (n,), bool, optional
        Only these rows take part (a cross-validation fold); a block's selected rows are
        copied (one block at a time), never the whole array.
    gram_matrix : bool, default False
        Whether :meth:`gram` computes ``X~^T X~`` (only the preconditioner uses it).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        *,
        rows: np.ndarray | None = None,
        block_rows: int = BLOCK_ROWS,
        gram_matrix: bool = False,
    ) -> None:
        if X.dtype != np.float32 or not X.flags.c_contiguous:
            raise ValueError(
                f"ArrayPasses needs a C-contiguous float32 array, got {X.dtype} "
                f"(contiguous={X.flags.c_contiguous}); read features with "
                "pool3.training.data so that no copy is made"
            )
        self.X = X
        self.y = np.asarray(y, dtype=np.int32)
        self.n_classes = n_classes
        self.n_features = X.shape[1]
        self.rows = rows
        self.block_rows = block_rows
        self.gram_matrix = gram_matrix
        # class -> (its weights' bytes, per block the rows active at them): a CG solve
        # calls hess with the same W many times, so its Hessian products touch only those
        self._active: dict[int, tuple[bytes, list[np.ndarray]]] = {}

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.X), self.block_rows):
            stop = start + self.block_rows
            X, y = self.X[start:stop], self.y[start:stop]
            if self.rows is not None:
                keep = self.rows[start:stop]
                if not keep.any():
                    continue
                if not keep.all():
                    X, y = X[keep], y[keep]
            yield X, y

    def gram(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(G, S, counts)``; ``G`` (a 2049^3 product, 2-3 s at 20k rows) only when built
        with ``gram_matrix=True`` (the preconditioner's), else empty (0, 0)."""
        d1 = self.n_features + 1
        S, counts = np.zeros((d1, self.n_classes)), np.zeros(self.n_classes)
        G = np.zeros((d1, d1)) if self.gram_matrix else np.zeros((0, 0))
        for X, y in self._blocks():
            if self.gram_matrix:
                g, s, c = gram_block(X, y, self.n_classes)
                G += g
            else:
                s, c = class_sums(X, y, self.n_classes)
            S += s
            counts += c
        return G, S, counts

    def loss_grad(
        self, W: np.ndarray, classes: np.ndarray, S: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        k = len(classes)
        loss, delta = np.zeros(k), np.zeros((len(STEP_SIZES), k))
        out, active = np.zeros((self.n_features + 1, k)), np.zeros(k)
        for X, y in self._blocks():
            parts = loss_grad_block(X, y, W, classes, S)
            loss += parts[0]
            delta += parts[1]
            out += parts[2]
            active += parts[3]
        return loss, delta, out, active

    def hess(self, W: np.ndarray, P: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """``X~^T (D X~ P)`` per class, ``D`` the rows active at ``W``: (d+1, k).

        The active rows of each class are found once per ``W`` (a product with ``X``) and
        kept as one boolean mask per block; later calls with the same weights multiply
        only the rows active in some of ``classes`` (1-30% of them near the solution).
        """
        self._find_active(W, classes)
        masks = [self._active[int(c)][1] for c in classes]
        out = np.zeros((self.n_features + 1, len(classes)))
        for b, (X, _) in enumerate(self._blocks()):
            out += active_product(X, np.stack([m[b] for m in masks], axis=1), P)
        return out

    def _find_active(self, W: np.ndarray, classes: np.ndarray) -> None:
        """Fill ``_active`` for the classes whose weights changed, in one product per block."""
        keys = [np.ascontiguousarray(W[:, j]).tobytes() for j in range(len(classes))]
        stale = [j for j, c in enumerate(classes) if self._active.get(int(c), (b"",))[0] != keys[j]]
        if not stale:
            return
        Ws, ks = W[:, stale], classes[stale]
        found: list[list[np.ndarray]] = [[] for _ in stale]
        for X, y in self._blocks():
            active = active_rows(X, y, Ws, ks)
            for i in range(len(stale)):
                found[i].append(active[:, i])
        for i, j in enumerate(stale):
            self._active[int(classes[j])] = (keys[j], found[i])
