"""liblinear's primal LinearSVC objective, every class at once, by an active-set Newton method.

For each column ``j`` (class ``k`` one-vs-rest, ``y_ik = +1`` for its rows, ``-1`` else;
cross-validation adds columns per fold, :class:`~.passes.Columns`) this
minimises liblinear's ``L2R_L2LOSS_SVC`` objective, as
``sklearn.svm.LinearSVC(C, loss="squared_hinge", penalty="l2", dual=False)`` fits it::

    f_j(w) = 1/2 |w|^2 + C sum_i c_ij max(0, 1 - y_ik w.x_i)^2,   x_i = (features_i, 1)

with the intercept as an extra feature of value 1 (``intercept_scaling = 1``), regularised
like every other weight, and ``c_ij`` 1 or 0 (rows a fold leaves out). liblinear's stopping
rule: column ``j`` is done when ``|grad f_j(w)| <= tol * max(min(pos_j, neg_j), 1) / n_j *
|grad f_j(0)|``; Armijo's line search (``eta = 0.01``) over steps 1, 1/2, ..., 2^-19.

**The squared hinge's gradient and Hessian involve only the rows active at w** (``y w.x <
1``), a few per cent per class near the optimum. Each Newton step therefore needs the full
table once, in one pass (:func:`~pool3.training.newton.passes.scan_block`): ``X [W | D]`` gives
the objective's change at every step size, and the rows active at ``W`` or ``W + D``, which
are every row active anywhere on the step (a margin is linear in the step size). The
driver holds those rows (:mod:`.held`); the gradient at the accepted step,
the stopping test and the CG solve of the next Newton system run on them alone. On the
driver (``newton``) the rows are the array's own; on Spark (``spark``) the pass ships the
missing ones to the driver, within a memory budget. Where the budget cannot hold the
active rows, that step's CG runs as passes (one per CG step) until the shipped rows
complete the set: the same iterates either way, up to rounding.

**Each Newton system is solved to a relative residual of 0.1** (CG on ``(I + 2C X_A^T X_A)
d = -g``): measured on 20k and 200k-row pool_3-like tables (48 classes, bench/RESULTS.md),
liblinear's looser rule (``eps_cg = 0.5``, chosen when every CG step is a pass) needs 4x
the Newton steps here; 0.01 needs no fewer steps than 0.1 and twice the CG steps, and an
exact first step from the Gram matrix ``X~^T X~`` (every row is active at ``w = 0``) saves
no step.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from pool3.training.newton.cg import dot
from pool3.training.newton.held import CopyHeld, Held
from pool3.training.newton.passes import Columns, Passes, Sums
from pool3.training.newton.step import start, step

log = logging.getLogger(__name__)

#: CG stops at this relative residual |r| <= INNER_TOL |g| (see the module docstring)
INNER_TOL = 0.1
#: the warm start's sample (:func:`sample_start`): one row in SAMPLE_EVERY, at least
#: SAMPLE_MIN rows, fitted to this tol (bench/RESULTS.md, "warm start")
SAMPLE_EVERY, SAMPLE_MIN, SAMPLE_TOL = 8, 2000, 1e-3


@dataclass
class NewtonFit:
    """What :func:`fit_newton` found: weights and how it got there.

    ``W`` (n_features + 1, columns) float64, last row the intercepts; ``passes`` counts
    passes over the table (Spark jobs for ``spark``); ``newton_iters`` the largest number of
    accepted steps of a column; ``cg_iters`` CG steps, ``cg_passes`` those that were
    passes (the distributed fallback) and ``fallback_steps`` the Newton steps that had
    any; ``held_peak_rows`` / ``shipped_bytes`` / ``largest_pass_bytes``: the rows the
    driver held at most, and what the passes shipped to it (0 on the driver's array).
    ``first``: the sums of the first pass at ``W0`` (e.g. the validation accuracy of a
    cross-validation warm start); ``g0``: the sums giving the gradient at ``w = 0``.
    """

    W: np.ndarray
    passes: int
    newton_iters: int
    cg_iters: int
    converged: bool
    grad_ratio: np.ndarray
    seconds: float
    cg_passes: int = 0
    fallback_steps: int = 0
    held_peak_rows: int = 0
    shipped_bytes: int = 0
    largest_pass_bytes: int = 0
    first: Sums | None = None
    g0: np.ndarray | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def stats(self) -> dict[str, int]:
        """The figures ``metrics.json`` and the summary give of a fit."""
        return {
            "passes": self.passes,
            "newton_steps": self.newton_iters,
            "cg_steps": self.cg_iters,
            "cg_passes": self.cg_passes,
            "fallback_steps": self.fallback_steps,
            "active_rows_peak": self.held_peak_rows,
            "collected_bytes": self.shipped_bytes,
            "collected_bytes_max_pass": self.largest_pass_bytes,
        }


def sample_start(
    sample: Passes, labels: np.ndarray, n_rows: int, *, C: float, tol: float, max_iter: int
) -> NewtonFit | None:
    """A fit of a sample of the ``n_rows`` rows (``sample``: passes over them, ``labels``
    their class indices) at ``C * n_rows / len(labels)``, so that its loss weighs as the
    whole table's does, to ``max(tol, SAMPLE_TOL)``: where the full fit starts. None when
    the sample lacks a class (its column would start from nothing learnt).

    At ``w = 0`` every row is active; the first Newton steps, whose CG runs over most of
    the table (and beyond the driver's budget, as passes), then run on the sample, and the
    full fit starts near the optimum, where a few per cent of the rows per class are
    active. Measured (bench/RESULTS.md, "Warm start"): 200k x 48 with ``spark``, 32 -> 26
    fit jobs (31 -> 24 Newton steps); on the driver, 31 -> 22 full passes (a probe)."""
    if len(np.unique(labels)) < sample.n_classes:
        return None
    return fit_newton(
        sample, C=C * n_rows / max(len(labels), 1), tol=max(tol, SAMPLE_TOL), max_iter=max_iter
    )


def fit_newton(
    passes: Passes,
    *,
    C: float,
    tol: float,
    max_iter: int = 1000,
    W0: np.ndarray | None = None,
    cols: Columns | None = None,
    held: Held | None = None,
    g0: np.ndarray | None = None,
    n_folds: int = 0,
    inner: float = INNER_TOL,
) -> NewtonFit:
    """Minimise every column's objective (module docstring) to liblinear's stopping rule.

    Parameters
    ----------
    passes : Passes
        The training rows (:class:`~.passes.ArrayPasses`, or
        :class:`~.spark_passes.SparkPasses`).
    C, tol, max_iter : float, float, int, keyword-only
        ``LinearSVC``'s ``C``, ``tol`` and ``max_iter`` (Newton steps per column).
    W0 : ndarray of shape (n_features + 1, columns), optional
        Warm start (the solution at the previous C). The stopping rule still measures the
        gradient against the one at ``w = 0``, as liblinear does.
    cols : Columns, optional
        The problems (default: every class one-vs-rest over every row).
    held, g0 : optional
        The store of held rows and :attr:`NewtonFit.g0` of an earlier fit of the same
        columns and rows (a C search's previous C): nothing shipped or summed again.
    n_folds : int
        Cross-validation folds: the first pass also gives each fold's validation accuracy
        at ``W0`` (:attr:`NewtonFit.first`).
    """
    started = time.perf_counter()
    cols = cols or Columns.one_vs_rest(passes.n_classes)
    held = held or passes.new_held()
    jobs_before = passes.jobs
    shipped_before = held.shipped_bytes if isinstance(held, CopyHeld) else 0
    first, g0, p = start(passes, cols, held, C=C, tol=tol, W0=W0, g0=g0, n_folds=n_folds)
    while len(run := np.flatnonzero(~p.done & (p.steps < max_iter))):
        step(passes, cols, held, p, run, C=C, inner=inner, jobs_before=jobs_before)
    ratio = np.sqrt(dot(p.grad, p.grad)) / p.target
    copy = held if isinstance(held, CopyHeld) else None
    return NewtonFit(
        W=p.W,
        passes=passes.jobs - jobs_before,
        newton_iters=int(p.steps.max(initial=0)),
        cg_iters=p.cg_total,
        converged=bool((ratio <= 1.0).all()),
        grad_ratio=ratio,
        seconds=time.perf_counter() - started,
        cg_passes=p.cg_passes,
        fallback_steps=p.fallback_steps,
        held_peak_rows=max(p.held_peak, copy.peak_rows if copy else 0),
        shipped_bytes=(copy.shipped_bytes - shipped_before) if copy else 0,
        largest_pass_bytes=copy.largest_pass_bytes if copy else 0,
        first=first,
        g0=g0,
        history=p.history,
    )
