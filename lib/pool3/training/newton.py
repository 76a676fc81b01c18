"""liblinear's primal LinearSVC objective solved for every class at once, in float32 passes.

For each class ``k`` of a one-vs-rest problem (``y_ik = +1`` for its rows, ``-1`` else)
this minimises liblinear's ``L2R_L2LOSS_SVC`` objective, as
``sklearn.svm.LinearSVC(C, loss="squared_hinge", penalty="l2", dual=False)`` fits it::

    f_k(w) = 1/2 |w|^2 + C sum_i c_i max(0, 1 - y_ik w.x_i)^2,   x_i = (features_i, 1)

with the intercept as an extra feature of value 1 (``intercept_scaling = 1``), regularised
like every other weight, and ``c_i`` a per-row weight (1, or 0 for rows a cross-validation
fold leaves out). It is a Newton method as liblinear 2.40+'s ``newton.cpp``: a CG inner
solve stopped by the quadratic-model rule (``eps_cg = 0.5``), an Armijo line search, and
liblinear's stopping rule: class ``k`` is done when
``|grad f_k(w)| <= tol * max(min(pos_k, neg_k), 1) / n * |grad f_k(0)|``.

- **All classes share each pass over the data.** The data are touched only through
  :class:`Passes`: one pass computes the loss and gradient of every class (``X^T R``), or
  one Hessian-vector product per class (``X^T (D X P)``) with matrix products over row
  blocks in float32; partial sums are added in float64. The loss pass also returns the
  objective's change at ten step sizes, summed row by row in float64 from ``X W`` and
  ``X S``, so the line search costs no extra pass and sees decreases far below float32's
  resolution of the objective.
- **Measured** (``bench/tablegen.py`` tables, 48 classes, 2 cores; bench/RESULTS.md):
  40k training rows in 453 passes (21 s), 160k in 842 passes (108 s), where liblinear
  needs ~85 s for 20k. On the driver, Hessian products touch only the rows active at
  ``W`` (found once per Newton step); the Spark passes find them again in each pass.
  Still far from the ~150 passes a Spark job per pass would like.
  A Gram-matrix preconditioner (``M_k = I + 2C a_k G``, :class:`_Precond`) needed more
  passes than plain CG in every form tried at 20k x 48: with liblinear's trust region in
  ``M_k``'s norm 5535 vs 2852 passes; with this line search and ``c`` scaled by 0.01,
  3761 vs 1698 (near the optimum only 1-3% of the rows are active, so ``G`` describes
  the Hessian badly). So it is off by default.

Memory besides the data: a few (2049, n_classes) float64 matrices; the passes hold one
row block's products.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pool3.training.passes import STEP_SIZES

log = logging.getLogger(__name__)

#: Armijo's sufficient decrease for the line search, as liblinear's newton.cpp
_ETA = 0.01
#: inner CG's stopping constant (liblinear newton.cpp's eps_cg)
_EPS_CG = 0.5
#: CG iterations per Newton step at most (each is a pass); reached only by pathological data
_MAX_CG = 250
#: a relative objective change below this is float64 noise: a class whose line search finds
#: no decrease stops there (liblinear: "line search fails")
_NOISE = 1e-12


class Passes(Protocol):
    """One sweep over the training rows computes one of these for all classes.

    ``W`` and ``P`` have shape (n_features + 1, k), float32, the last row the intercept's;
    ``classes`` (k,) are the class indices they belong to. Results are float64.
    """

    n_features: int
    n_classes: int

    def gram(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(G, S, counts)``: ``G = X~^T C X~`` (d+1, d+1) over weighted rows ``x~ = (x, 1)``,
        ``S[:, k] = sum of c_i x~_i`` over class ``k`` (d+1, n_classes), ``counts`` (n_classes,)
        the weighted rows per class. ``G`` may be empty (0, 0) where it is costly to gather
        (:mod:`pool3.training.spark_passes`): only the preconditioner uses it."""
        ...

    def loss_grad(
        self, W: np.ndarray, classes: np.ndarray, S: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(loss, change, XtR, active)`` at ``W + S`` (``S`` a step, or none): per class
        ``sum c_i r_i^2``, its change from ``W`` (exact in float64, not a difference of two
        rounded losses), ``X~^T (c r)`` and the weighted count of active rows, where
        ``r_i = z_i - y_i`` on rows with ``y_i z_i < 1``."""
        ...

    def hess(self, W: np.ndarray, P: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """``X~^T (c D X~ P)`` with ``D`` the rows active at ``W``, per class: (d+1, k)."""
        ...


@dataclass
class NewtonFit:
    """What :func:`fit_newton` found: weights and how it got there.

    ``W`` (n_features + 1, n_classes) float64, last row the intercepts; ``passes`` counts
    sweeps over the data; ``newton_iters`` the largest number of accepted steps of a class.
    """

    W: np.ndarray
    passes: int
    newton_iters: int
    cg_iters: int
    converged: bool
    grad_ratio: np.ndarray
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class _Precond:
    """``M_k = I + c_k G`` for many ``c_k`` at once, through ``G``'s eigendecomposition."""

    def __init__(self, G: np.ndarray) -> None:
        lam, V = np.linalg.eigh(G)
        self.lam = np.maximum(lam, 0.0)
        self.V = V

    def solve(self, R: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.V @ ((self.V.T @ R) / (1.0 + np.outer(self.lam, c)))


def _dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", A, B)


def _f32(A: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(A, dtype=np.float32)


def fit_newton(
    passes: Passes,
    *,
    C: float,
    tol: float,
    max_iter: int = 1000,
    W0: np.ndarray | None = None,
    gram: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    precondition: bool = False,
) -> NewtonFit:
    """Minimise every class's objective (module docstring) to liblinear's stopping rule.

    Parameters
    ----------
    passes : Passes
        The training rows (:class:`pool3.training.passes.ArrayPasses`).
    C, tol, max_iter : float, float, int, keyword-only
        ``LinearSVC``'s ``C``, ``tol`` and ``max_iter`` (Newton steps per class).
    W0 : ndarray of shape (n_features + 1, n_classes), optional
        Warm start (e.g. the solution for the previous C). The stopping rule still measures
        the gradient against the one at ``w = 0``, as liblinear does.
    gram : tuple, optional
        :meth:`Passes.gram` computed before for the same rows (saves a pass).
    precondition : bool, default False
        CG preconditioned with ``I + 2C a_k G`` (see :class:`_Precond`): needed more
        passes than plain CG on pool_3-like tables (module docstring), so off.
    """
    started = time.perf_counter()
    n_passes = 0
    if gram is None:
        gram = passes.gram()
        n_passes += 1
    G, S_cls, counts = gram
    d1, K = S_cls.shape[0], passes.n_classes
    n = float(counts.sum())
    # At w = 0 every row is active: r = -y, so X~^T r = -(2 S_k - sum_all).
    total = S_cls.sum(axis=1)
    grad0 = 2 * C * -(2 * S_cls - total[:, None])
    g0_norm = np.sqrt(_dot(grad0, grad0))
    eps = tol * np.maximum(np.minimum(counts, n - counts), 1.0) / max(n, 1.0)
    target = np.maximum(eps * g0_norm, 1e-300)
    if precondition and G.shape != (d1, d1):
        raise ValueError("precondition=True needs the Gram matrix; these passes do not compute it")
    pre = _Precond(G) if precondition else None
    everyone = np.arange(K)
    if W0 is None:
        W = np.zeros((d1, K))
        f = np.full(K, C * n)
        grad = grad0.copy()
        active = np.full(K, n)
    else:
        W = np.array(W0, dtype=np.float64)
        loss, _, xtr, active = passes.loss_grad(_f32(W), everyone)
        n_passes += 1
        f = 0.5 * _dot(W, W) + C * loss
        grad = W + 2 * C * xtr
    done = np.sqrt(_dot(grad, grad)) <= target
    steps = np.zeros(K, dtype=int)
    cg_total = 0
    history: list[dict[str, float]] = []
    while True:
        run = np.flatnonzero(~done & (steps < max_iter))
        if not len(run):
            break
        c_pre = 2 * C * active[run] / max(n, 1.0)
        D, cg = _pcg(passes, pre, W[:, run], grad[:, run], c_pre, run, C=C)
        n_passes += cg + 1
        cg_total += cg
        # One pass: the gradient at the full step, the objective's change at every step size.
        _, dloss, xtr, act_new = passes.loss_grad(_f32(W[:, run]), run, _f32(D))
        t = STEP_SIZES[:, None]
        change = t * _dot(W[:, run], D) + 0.5 * t * t * _dot(D, D) + C * dloss
        gd = _dot(grad[:, run], D)
        ok = change <= _ETA * t * gd
        found = ok.any(axis=0)
        pick = np.argmax(ok, axis=0)
        tk = STEP_SIZES[pick]
        moved = run[found]
        W[:, moved] += tk[found] * D[:, found]
        f[moved] += change[pick[found], np.flatnonzero(found)]
        steps[moved] += 1
        full = found & (pick == 0)
        grad[:, run[full]] = W[:, run[full]] + 2 * C * xtr[:, full]
        active[run[full]] = act_new[full]
        short = run[found & (pick > 0)]
        if len(short):
            _, _, xtr_s, act_s = passes.loss_grad(_f32(W[:, short]), short)
            n_passes += 1
            grad[:, short] = W[:, short] + 2 * C * xtr_s
            active[short] = act_s
        # No step size decreases f beyond rounding: liblinear stops such a class too.
        stalled = run[
            ~found | (np.abs(change[pick, np.arange(len(run))]) <= _NOISE * np.abs(f[run]))
        ]
        done[stalled] = True
        ratio = np.sqrt(_dot(grad, grad)) / target
        done |= ratio <= 1.0
        history.append(
            {"passes": n_passes, "running": len(run), "cg": cg, "worst": float(ratio.max())}
        )
        log.debug(
            "newton: %d classes running, %d CG passes, worst |g|/target %.3g, %d passes so far",
            len(run),
            cg,
            float(ratio.max()),
            n_passes,
        )
    ratio = np.sqrt(_dot(grad, grad)) / target
    return NewtonFit(
        W=W,
        passes=n_passes,
        newton_iters=int(steps.max(initial=0)),
        cg_iters=cg_total,
        converged=bool((ratio <= 1.0).all()),
        grad_ratio=ratio,
        seconds=time.perf_counter() - started,
        history=history,
    )


def _pcg(
    passes: Passes,
    pre: _Precond | None,
    W: np.ndarray,
    grad: np.ndarray,
    c: np.ndarray,
    run: np.ndarray,
    *,
    C: float,
) -> tuple[np.ndarray, int]:
    """Preconditioned CG on ``H d = -g`` for classes ``run``, stopped as liblinear's newton.cpp.

    A class stops when the quadratic model ``Q(d) = g.d + d.H d / 2`` stops improving:
    ``j (Q_j - Q_j-1) >= _EPS_CG Q_j`` at CG iteration ``j`` (Nash & Sofer's rule, which
    liblinear 2.40+ uses with 0.5). Returns ``(d, passes)``: each CG iteration is one
    Hessian pass for the classes still running.
    """
    Wr = _f32(W)
    R = -grad
    Z = R.copy() if pre is None else pre.solve(R, c)
    P = Z.copy()
    D = np.zeros_like(R)
    rz = _dot(R, Z)
    Q = np.zeros(len(run))
    live = rz > 0
    n_pass = 0
    while n_pass < _MAX_CG and live.any():
        idx = np.flatnonzero(live)
        n_pass += 1
        Hp = P[:, idx] + 2 * C * passes.hess(Wr[:, idx], _f32(P[:, idx]), run[idx])
        pHp = _dot(P[:, idx], Hp)
        alpha = rz[idx] / np.where(pHp > 0, pHp, 1e-300)
        D[:, idx] += alpha * P[:, idx]
        R[:, idx] -= alpha * Hp
        Q_new = -0.5 * (_dot(D[:, idx], R[:, idx]) - _dot(D[:, idx], grad[:, idx]))
        Q_diff = Q_new - Q[idx]
        Q[idx] = Q_new
        live[idx] = (Q_new < 0) & (Q_diff < 0) & (n_pass * Q_diff < _EPS_CG * Q_new)
        Zl = R[:, idx] if pre is None else pre.solve(R[:, idx], c[idx])
        rz_new = _dot(R[:, idx], Zl)
        beta = rz_new / np.where(rz[idx] > 0, rz[idx], 1e-300)
        P[:, idx] = Zl + beta * P[:, idx]
        rz[idx] = rz_new
        live[idx] &= rz_new > 0
    return D, n_pass
