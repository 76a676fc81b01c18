"""One Newton step of :func:`pool3.training.newton.method.fit_newton`, by job.

:func:`start`: the first pass, the objective, gradient and stopping target of every column;
:func:`step`: one step of the running columns: :func:`direction` (the CG solve, on the held
rows or as passes), one scan along it and Armijo's line search over every step size, then
:func:`gradient` at the accepted step and the stopping test. :class:`Progress` carries the
iterate from step to step.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from pool3.training.newton.cg import HeldHessian, HeldState, PassHessian, dot, evaluate_held, solve
from pool3.training.newton.held import Held
from pool3.training.newton.passes import STEP_SIZES, Columns, Passes, Sums

log = logging.getLogger(__name__)

#: Armijo's sufficient decrease for the line search, as liblinear's newton.cpp
_ETA = 0.01
#: a relative objective change below this is float64 noise: a column whose line search finds
#: no decrease stops there (liblinear: "line search fails")
_NOISE = 1e-12


@dataclass
class Progress:
    """The iterate of :func:`fit_newton` and its bookkeeping, column by column: weights,
    objective, gradient, the stopping rule's target, which columns are done and how many
    steps each took; whether the held rows are every active row (``complete``) and the held
    rows' sums at the current weights (``state``, for the running columns it names)."""

    W: np.ndarray
    f: np.ndarray
    grad: np.ndarray
    target: np.ndarray
    done: np.ndarray
    steps: np.ndarray
    complete: bool
    held_peak: int
    cg_total: int = 0
    cg_passes: int = 0
    fallback_steps: int = 0
    state: tuple[np.ndarray, HeldState] | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def start(
    passes: Passes,
    cols: Columns,
    held: Held,
    *,
    C: float,
    tol: float,
    W0: np.ndarray | None,
    g0: np.ndarray | None,
    n_folds: int,
) -> tuple[Sums, np.ndarray, Progress]:
    """The first pass, at ``W0`` (or 0): its sums, the sums giving the gradient at ``w = 0``,
    and every column's objective, gradient and liblinear's stopping target."""
    W = np.zeros((passes.n_features + 1, len(cols))) if W0 is None else np.array(W0, np.float64)
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
    grad = W + 2 * C * first.xtr
    done = np.sqrt(dot(grad, grad)) <= target
    f = 0.5 * dot(W, W) + C * first.loss
    steps = np.zeros(len(cols), dtype=int)
    return first, g0, Progress(W, f, grad, target, done, steps, complete, held.rows())


def step(
    passes: Passes,
    cols: Columns,
    held: Held,
    p: Progress,
    run: np.ndarray,
    *,
    C: float,
    inner: float,
    jobs_before: int,
) -> None:
    """One Newton step of the columns ``run``: the direction (CG), one scan along it, the
    line search, the gradient at the accepted step and the stopping test."""
    Wr, cr = p.W[:, run], cols.take(run)
    D, cg, on_passes, cg_seconds, was_complete = direction(
        passes, held, p, run, Wr, cr, C=C, inner=inner
    )
    scan, p.complete = passes.scan(Wr, D, cr, held, end=not was_complete)
    assert scan.delta is not None
    p.held_peak = max(p.held_peak, held.rows())
    t = STEP_SIZES[:, None]
    change = t * dot(Wr, D) + 0.5 * t * t * dot(D, D) + C * scan.delta
    ok = change <= _ETA * t * dot(p.grad[:, run], D)
    found_step = ok.any(axis=0)
    pick = np.argmax(ok, axis=0)
    moved = run[found_step]
    p.W[:, moved] += STEP_SIZES[pick[found_step]] * D[:, found_step]
    p.f[moved] += change[pick[found_step], np.flatnonzero(found_step)]
    p.steps[moved] += 1
    stalled = run[
        ~found_step | (np.abs(change[pick, np.arange(len(run))]) <= _NOISE * np.abs(p.f[run]))
    ]
    p.state = None
    whole = scan.xtr is not None and not (found_step & (pick > 0)).any()
    scanned = (moved, scan.xtr[:, found_step]) if whole and scan.xtr is not None else None
    gradient(passes, cols, held, p, run, scanned, C=C)
    p.done[stalled] = True
    ratio = np.sqrt(dot(p.grad, p.grad)) / p.target
    p.done |= ratio <= 1.0
    p.history.append(
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


def direction(
    passes: Passes,
    held: Held,
    p: Progress,
    run: np.ndarray,
    Wr: np.ndarray,
    cr: Columns,
    *,
    C: float,
    inner: float,
) -> tuple[np.ndarray, int, int, float, bool]:
    """The Newton direction of the columns ``run`` (CG to ``inner``): on the held rows when
    they are every active row, else with each Hessian product a pass. Returns it with its CG
    steps, those that were passes, the CG's seconds, and whether the held rows were complete
    after it."""
    op: PassHessian | HeldHessian
    if p.complete:
        if p.state is None or not np.array_equal(p.state[0], run):
            found = evaluate_held(held, Wr, cr)
            p.state = (run, found)
            p.grad[:, run] = Wr + 2 * C * found.sums.xtr  # type: ignore[operator]
        op = HeldHessian(held, p.state[1], C)
    else:
        op = PassHessian(passes, held, Wr, cr, C)
    cg_started = time.perf_counter()
    D, cg = solve(op, p.grad[:, run], inner)
    cg_seconds = time.perf_counter() - cg_started
    p.cg_total += cg
    on_passes = op.calls if isinstance(op, PassHessian) else 0
    p.cg_passes += on_passes
    p.fallback_steps += on_passes > 0
    was_complete = p.complete or (isinstance(op, PassHessian) and op.local is not None)
    return D, cg, on_passes, cg_seconds, was_complete


def gradient(
    passes: Passes,
    cols: Columns,
    held: Held,
    p: Progress,
    run: np.ndarray,
    scanned: tuple[np.ndarray, np.ndarray] | None,
    *,
    C: float,
) -> None:
    """The gradient of the columns ``run`` at their accepted step: from the held rows when
    they are complete (dropping those no column needs), from the scan when every column
    took the whole step (``scanned``: the columns that moved and the scan's ``X~^T r`` at
    their step), else from one more pass."""
    if p.complete:
        found = evaluate_held(held, p.W[:, run], cols.take(run))
        p.grad[:, run] = p.W[:, run] + 2 * C * found.sums.xtr  # type: ignore[operator]
        if held.trim():
            keep = np.flatnonzero(found.any)
            held.keep(keep)
            found.keep(keep)
        p.state = (run, found)
    elif scanned is not None:
        # every column took the whole step: the pass gave its gradient there
        moved, xtr = scanned
        p.grad[:, moved] = p.W[:, moved] + 2 * C * xtr
    else:
        again, p.complete = passes.evaluate(p.W[:, run], cols.take(run), held)
        assert again.xtr is not None
        p.grad[:, run] = p.W[:, run] + 2 * C * again.xtr
    if not p.complete and held.trim():
        # make room for the rows active now: the held rows no column needs go
        held.keep(np.flatnonzero(evaluate_held(held, p.W[:, run], cols.take(run)).any))
