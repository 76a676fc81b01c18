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

from pool3.training.newton.cg import HeldHessian, HeldState, PassHessian, dot, evaluate_held, solve
from pool3.training.newton.held import CopyHeld, Held
from pool3.training.newton.passes import STEP_SIZES, Columns, Passes, Sums

log = logging.getLogger(__name__)

#: Armijo's sufficient decrease for the line search, as liblinear's newton.cpp
_ETA = 0.01
#: CG stops at this relative residual |r| <= INNER_TOL |g| (see the module docstring)
INNER_TOL = 0.1
#: a relative objective change below this is float64 noise: a column whose line search finds
#: no decrease stops there (liblinear: "line search fails")
_NOISE = 1e-12
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
    k = len(cols)
    W = np.zeros((passes.n_features + 1, k)) if W0 is None else np.array(W0, dtype=np.float64)
    first, complete = passes.evaluate(
        W, cols, held, g0=W0 is not None and g0 is None, n_folds=n_folds
    )
    assert first.loss is not None and first.xtr is not None and first.rows is not None
    if g0 is None:
        g0 = first.g0 if W0 is not None else -first.xtr
    assert g0 is not None and first.positives is not None
    n = first.rows
    g0_norm = 2 * C * np.sqrt(dot(g0, g0))
    eps = tol * np.maximum(np.minimum(first.positives, n - first.positives), 1.0) / np.maximum(n, 1)
    target = np.maximum(eps * g0_norm, 1e-300)
    f = 0.5 * dot(W, W) + C * first.loss
    grad = W + 2 * C * first.xtr
    done = np.sqrt(dot(grad, grad)) <= target
    steps = np.zeros(k, dtype=int)
    cg_total = cg_passes = fallback_steps = 0
    held_peak = held.rows()
    state: tuple[np.ndarray, HeldState] | None = None
    history: list[dict[str, float]] = []
    while True:
        run = np.flatnonzero(~done & (steps < max_iter))
        if not len(run):
            break
        Wr, cr = W[:, run], cols.take(run)
        op: PassHessian | HeldHessian
        if complete:
            if state is None or not np.array_equal(state[0], run):
                found = evaluate_held(held, Wr, cr)
                state = (run, found)
                grad[:, run] = Wr + 2 * C * found.sums.xtr  # type: ignore[operator]
            op = HeldHessian(held, state[1], C)
        else:
            op = PassHessian(passes, held, Wr, cr, C)
        cg_started = time.perf_counter()
        D, cg = solve(op, grad[:, run], inner)
        cg_seconds = time.perf_counter() - cg_started
        cg_total += cg
        on_passes = op.calls if isinstance(op, PassHessian) else 0
        cg_passes += on_passes
        fallback_steps += on_passes > 0
        was_complete = complete or (isinstance(op, PassHessian) and op.local is not None)
        scan, complete = passes.scan(Wr, D, cr, held, end=not was_complete)
        assert scan.delta is not None
        held_peak = max(held_peak, held.rows())
        t = STEP_SIZES[:, None]
        change = t * dot(Wr, D) + 0.5 * t * t * dot(D, D) + C * scan.delta
        ok = change <= _ETA * t * dot(grad[:, run], D)
        found_step = ok.any(axis=0)
        pick = np.argmax(ok, axis=0)
        moved = run[found_step]
        W[:, moved] += STEP_SIZES[pick[found_step]] * D[:, found_step]
        f[moved] += change[pick[found_step], np.flatnonzero(found_step)]
        steps[moved] += 1
        stalled = run[
            ~found_step | (np.abs(change[pick, np.arange(len(run))]) <= _NOISE * np.abs(f[run]))
        ]
        state = None
        if complete:
            found = evaluate_held(held, W[:, run], cols.take(run))
            grad[:, run] = W[:, run] + 2 * C * found.sums.xtr  # type: ignore[operator]
            if held.trim():
                keep = np.flatnonzero(found.any)
                held.keep(keep)
                found.keep(keep)
            state = (run, found)
        elif scan.xtr is not None and not (found_step & (pick > 0)).any():
            # every column took the whole step: the pass gave its gradient there
            grad[:, moved] = W[:, moved] + 2 * C * scan.xtr[:, found_step]
        else:
            again, complete = passes.evaluate(W[:, run], cols.take(run), held)
            assert again.xtr is not None
            grad[:, run] = W[:, run] + 2 * C * again.xtr
        if not complete and held.trim():
            # make room for the rows active now: the held rows no column needs go
            held.keep(np.flatnonzero(evaluate_held(held, W[:, run], cols.take(run)).any))
        done[stalled] = True
        ratio = np.sqrt(dot(grad, grad)) / target
        done |= ratio <= 1.0
        history.append(
            {
                "passes": passes.jobs - jobs_before,
                "running": len(run),
                "cg": cg,
                "cg_passes": on_passes,
                "held_rows": held.rows(),
                "worst": float(ratio.max()),
                "cg_seconds": cg_seconds,
            }
        )
        log.debug(
            "newton: %d columns running, %d CG steps (%d as passes) in %.2f s, %d rows held, "
            "worst |g|/target %.3g, %d passes so far",
            len(run),
            cg,
            on_passes,
            cg_seconds,
            held.rows(),
            float(ratio.max()),
            passes.jobs - jobs_before,
        )
    ratio = np.sqrt(dot(grad, grad)) / target
    copy = held if isinstance(held, CopyHeld) else None
    return NewtonFit(
        W=W,
        passes=passes.jobs - jobs_before,
        newton_iters=int(steps.max(initial=0)),
        cg_iters=cg_total,
        converged=bool((ratio <= 1.0).all()),
        grad_ratio=ratio,
        seconds=time.perf_counter() - started,
        cg_passes=cg_passes,
        fallback_steps=fallback_steps,
        held_peak_rows=max(held_peak, copy.peak_rows if copy else 0),
        shipped_bytes=(copy.shipped_bytes - shipped_before) if copy else 0,
        largest_pass_bytes=copy.largest_pass_bytes if copy else 0,
        first=first,
        g0=g0,
        history=history,
    )
