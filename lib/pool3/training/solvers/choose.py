"""The one place that chooses a solver: ``train.solver``, ``"auto"`` resolved, and why.

:func:`pick_solver` is what training calls (:func:`pool3.training.fit.train_table`, and
:func:`pool3.training.solvers.driver.train_and_evaluate` when given no choice): the table's
sizes, the driver's memory and the master, handed to :func:`choose_solver`, and the choice
logged. :func:`choose_solver` is the rule itself, on numbers alone (tested without a table).
The five solvers (:mod:`pool3.training.solvers`) each return a
:class:`~pool3.training.solvers.fitted.Fitted`; :class:`Choice` says which runs and why.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

from pool3.config import TrainParams
from pool3.connect import is_local_master
from pool3.errors import DataError
from pool3.training.table.data import driver_mb
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


def pick_solver(
    data: TrainingTable, params: TrainParams, *, max_collect_mb: float | None = None
) -> Choice:
    """The solver for ``data`` (:func:`choose_solver` with its training rows, the driver
    memory that :func:`pool3.training.table.data.collect_split` would take for its usable
    rows, and whether the master is local), logged.

    ``max_collect_mb``: ``params.max_collect_mb`` for a :class:`pool3.config.TrainConfig`,
    else 0 (auto). ``C = "auto"`` cross-validates with whichever solver fits (the Newton
    solvers, on the driver or on Spark, with the same folds; liblinear/SGD fold by fold).
    """
    if max_collect_mb is None:
        max_collect_mb = float(getattr(params, "max_collect_mb", 0))
    choice = choose_solver(
        params,
        n_train=data.n_train,
        table_mb=driver_mb(data.counts["rows_used"], data.n_features),
        max_collect_mb=max_collect_mb,
        n_features=data.n_features,
        local=is_local_master(data.frame.sparkSession),
    )
    log.info("solver: %s because %s", choice.name, choice.why)
    return choice
