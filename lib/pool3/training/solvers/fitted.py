"""The solvers' one interface (:class:`Fitted`) and the one place that chooses a solver.

Five solvers fit the linear SVM; each returns a :class:`Fitted`:

``liblinear``
    scikit-learn's ``LinearSVC``, the tutorial's exact library, on the driver
    (:mod:`pool3.training.solvers.sklearn_solver`). Copies the rows to float64 and to its own
    sparse nodes: ~24 bytes per value per process.
``sgd``
    scikit-learn's ``SGDClassifier`` with the SVM's loss, on the driver (approximate).
``newton``
    :func:`pool3.training.newton.method.fit_newton` over the driver's float32 array: liblinear's
    objective and stopping rule, all classes per pass, no copy of the rows.
``spark``
    The same Newton iterations with the rows cached on the executors as float32 Arrow
    blocks, one Spark job per pass (:mod:`pool3.training.newton.spark_passes`); only DataFrame
    operations, so it also runs over Spark Connect.
``mllib``
    Spark MLlib's ``OneVsRest(LinearSVC)``: the hinge loss, kept for comparison.

:func:`choose_solver` resolves ``train.solver = "auto"`` and says why, for the log.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pool3.config import TrainParams
from pool3.errors import DataError
from pool3.training.classifier import LinearModel
from pool3.training.newton.method import NewtonFit
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)

DRIVER_SOLVERS = ("liblinear", "sgd", "newton")
CLUSTER_SOLVERS = ("spark", "mllib")

#: liblinear copies X to float64 and its own nodes (~24 bytes a value); beyond this many
#: values a non-squared-hinge objective (which Newton does not fit) goes to SGD.
LIBLINEAR_MAX_VALUES = 250_000_000
#: Share of the driver's available memory the feature array may take (the rest: Python,
#: the test scores, the report).
AVAILABLE_SHARE = 0.6
#: train.max_collect_mb = 0 (auto) on a cluster: the feature array a driver solver may hold
CLUSTER_COLLECT_MB = 4096


@dataclass(frozen=True, eq=False)
class Fitted:
    """A fitted linear classifier, whatever solver made it.

    Attributes
    ----------
    coef : ndarray of shape (n_rows, n_features)
        One row per class, or one row scoring ``classes[1]`` for two classes.
    intercept : ndarray of shape (n_rows,)
    classes : tuple of str
    estimator : str
        What ran, e.g. ``"newton (float32, driver)"``, for the log, meta and report.
    n_iter : int or None
        Largest iteration count over the classes (Newton steps, liblinear iterations).
    converged : bool or None
    seconds : float
    passes : int or None
        Sweeps over the training rows (Newton solvers).
    raw : object
        The library's own fitted object, or the Newton weights (for warm starts).
    extra : dict
        Solver-specific, JSON-ready details merged into the model's meta.
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: tuple[str, ...]
    estimator: str
    n_iter: int | None
    converged: bool | None
    seconds: float
    passes: int | None = None
    raw: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(n, n_classes) float64 scores, column ``j`` for ``classes[j]``."""
        coef = np.asarray(self.coef, dtype=np.float64).T
        s = np.empty((len(X), coef.shape[1]))
        for start in range(0, len(X), 8192):  # row blocks: no float64 copy of all of X
            s[start : start + 8192] = np.asarray(X[start : start + 8192], dtype=np.float64) @ coef
        s += self.intercept
        return np.hstack([-s, s]) if s.shape[1] == 1 else s

    @classmethod
    def from_newton(
        cls,
        fit: NewtonFit,
        classes: Sequence[str],
        *,
        estimator: str,
        max_iter: int,
        quiet: bool = False,
        **extra: Any,
    ) -> Fitted:
        """A :func:`pool3.training.newton.method.fit_newton` result for ``classes`` (one weight
        column each; for two classes only ``classes[1]``'s, as scikit-learn keeps it);
        warns unless ``quiet`` when it stopped before liblinear's stopping rule."""
        if not fit.converged and not quiet:
            log.warning(
                "%s stopped before liblinear's stopping rule (worst |g| is %.3g x the "
                "target; max_iter=%d, or no step size lowered the objective further): "
                "raise train.max_iter or lower train.C",
                estimator,
                float(fit.grad_ratio.max()),
                max_iter,
            )
        pick = [1] if len(classes) == 2 else list(range(len(classes)))
        return cls(
            coef=fit.W[:-1, pick].T.astype(np.float32),
            intercept=fit.W[-1, pick].astype(np.float32),
            classes=tuple(str(c) for c in classes),
            estimator=estimator,
            n_iter=fit.newton_iters,
            converged=fit.converged,
            seconds=fit.seconds,
            passes=fit.passes,
            raw=fit,
            extra={"cg_iters": fit.cg_iters, "newton": fit.stats(), **extra},
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[np.argmax(self.scores(X), axis=1)]

    def model(self, data: TrainingTable, params: TrainParams, choice: Choice) -> LinearModel:
        """The classifier pool3 saves, its meta saying what was fitted on what, and how."""
        meta = {
            "counts": dict(data.counts),
            "feature_precision": data.precision,
            "n_train": data.n_train,
            "n_test": data.n_test,
            "n_features": int(self.coef.shape[1]),
            "split": dict(data.split),
            "params": asdict(params),
            "solver_choice": {"solver": choice.name, "why": choice.why},
            **self.meta(),
        }
        return LinearModel(self.coef, self.intercept, self.classes, data.fingerprint, meta)

    def meta(self) -> dict[str, Any]:
        """What the model's ``classifier.json`` records about the fit."""
        return {
            "estimator": self.estimator,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "fit_seconds": round(self.seconds, 3),
            **({"passes": self.passes} if self.passes is not None else {}),
            **self.extra,
        }


@dataclass(frozen=True)
class Choice:
    """The solver that runs and why (``"solver='newton' as configured"``, sizes...)."""

    name: str
    why: str

    @property
    def on_driver(self) -> bool:
        return self.name in DRIVER_SOLVERS


def available_mb() -> float:
    """Memory this machine can still give the driver (``MemAvailable``), in MiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return float(pages) / 2**20


def collect_limit(max_collect_mb: float, *, local: bool) -> tuple[float, str]:
    """The feature array a driver solver may hold (MiB) and the rule that set it.

    ``train.max_collect_mb`` when set; ``0`` (auto) means no fixed cap with a local master
    (the executors run on the driver's machine and share its cores, so the driver's array
    trains at least as fast as Spark jobs over the same cores, and only the memory check
    applies), and :data:`CLUSTER_COLLECT_MB` on a cluster, whose executors add cores."""
    if max_collect_mb:
        return float(max_collect_mb), f"train.max_collect_mb={max_collect_mb:g}"
    if local:
        return math.inf, "a local master (the executors share this machine's cores)"
    return float(
        CLUSTER_COLLECT_MB
    ), f"train.max_collect_mb=0: {CLUSTER_COLLECT_MB} MB on a cluster"


def driver_limit_mb(max_collect_mb: float, *, local: bool, free_mb: float | None = None) -> float:
    """What the driver may hold: :func:`collect_limit` within ``AVAILABLE_SHARE`` of the
    memory available now."""
    free = available_mb() if free_mb is None else free_mb
    return min(collect_limit(max_collect_mb, local=local)[0], AVAILABLE_SHARE * free)


def choose_solver(
    params: TrainParams,
    *,
    n_train: int,
    table_mb: float,
    max_collect_mb: float,
    free_mb: float | None = None,
    n_features: int = 2048,
    local: bool = False,
) -> Choice:
    """The solver for ``params.solver`` (resolving ``"auto"``) and why.

    ``table_mb`` is what :func:`pool3.training.table.data.collect_split` holds on the driver; it
    must fit both :func:`collect_limit` (``max_collect_mb``; ``0``: none with a ``local``
    master, :data:`CLUSTER_COLLECT_MB` else) and ``AVAILABLE_SHARE`` of the memory available
    now (``free_mb``, default :func:`available_mb`) for a driver solver. ``auto``:
    ``newton`` while the array fits, else ``spark``, for LinearSVC's default objective
    (Newton was faster than liblinear at every size measured, 1k to 1M rows: bench/RESULTS.md;
    with a local master faster than ``spark`` too, which runs its jobs on the same cores
    and moves every pass through the JVM); liblinear (SGD when huge) for the other
    objectives. Raises DataError when nothing fits.
    """
    sizes = f"{n_train} training rows, the table ~{table_mb:.1f} MB float32 on the driver"
    cap, rule = collect_limit(max_collect_mb, local=local)
    if params.solver != "auto":
        if params.solver in DRIVER_SOLVERS and table_mb > cap:
            cluster = "'spark'" if params.newton_compatible else "'mllib' (penalty='l2')"
            raise DataError(
                f"train.solver = {params.solver!r} fits on the driver, but {sizes}, above "
                f"{rule}: raise it (and the driver's memory), "
                f"train on the cluster with train.solver = {cluster}, or train on a sample"
            )
        return Choice(params.solver, f"solver={params.solver!r} as configured")
    free = available_mb() if free_mb is None else free_mb
    limit = min(cap, AVAILABLE_SHARE * free)
    if table_mb <= limit:
        fits = f"{sizes} (<= {rule}; {AVAILABLE_SHARE:.0%} of the {free:.0f} MB available)"
        if not params.newton_compatible:
            if n_train * n_features > LIBLINEAR_MAX_VALUES and params.multi_class == "ovr":
                return Choice("sgd", f"{fits}; too large for liblinear's float64 copies")
            return Choice(
                "liblinear",
                f"{fits}; only liblinear fits loss={params.loss!r}, "
                f"penalty={params.penalty!r}, multi_class={params.multi_class!r}",
            )
        return Choice("newton", fits)
    over = (
        f"{sizes}, above {rule}"
        if table_mb > cap
        else f"{sizes}, above {AVAILABLE_SHARE:.0%} of the {free:.0f} MB available"
    )
    if params.newton_compatible:
        return Choice("spark", over)
    raise DataError(
        f"{over}, and loss={params.loss!r}, penalty={params.penalty!r}, multi_class="
        f"{params.multi_class!r} is fitted on the driver only: use the default "
        "squared_hinge/l2/ovr (train.solver = 'spark' fits it on the cluster), raise "
        "train.max_collect_mb and the driver's memory, or train on a sample of the table"
    )
