"""``train.solver = "spark"``: the Newton solver with the rows on the executors.

The rows are cached once as float32 blocks (:class:`.SparkPasses`);
each Newton step is one Spark job over them, which also ships the newly active rows to the
driver, where the gradient and the CG solve run. The driver holds at most
``train.active_rows_mb`` of rows (default: a quarter of the memory it has, within
``train.max_collect_mb``); what one job may ship is bounded by the JVM heaps it passes
through (:func:`budgets`). ``C = "auto"`` cross-validates every fold
in the same jobs (:func:`pool3.training.solvers.c_search.search_C_newton`), with the folds the
driver would draw, so both choose the same C.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.config import TrainParams
from pool3.connect import is_local_master, task_slots
from pool3.training.newton.array_passes import ArrayPasses
from pool3.training.newton.method import SAMPLE_EVERY, SAMPLE_MIN, fit_newton, sample_start
from pool3.training.newton.spark_passes import PARTITION_ROWS, SparkPasses
from pool3.training.solvers.c_search import CSearch, fold_of, numeric_C, search_C_newton
from pool3.training.solvers.choose import available_mb, driver_limit_mb
from pool3.training.solvers.fitted import Fitted
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)

#: share of the driver's available memory the held rows may take by default
HELD_SHARE = 0.25
#: what one job may ship to the driver at most, and its share of spark.driver.maxResultSize
SHIP_MB, SHIP_SHARE = 256.0, 0.25
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


def size_mb(text: str) -> float | None:
    """A Spark size (``1g``, ``512m``, ``1024k``, bytes) in MiB; None for ``0`` (no limit)
    or what does not parse."""
    found = _SIZE.match(str(text))
    if not found:
        return None
    value = (
        float(found.group(1))
        * {"": 2**-20, "k": 2**-10, "m": 1, "g": 2**10, "t": 2**20}[found.group(2).lower()]
    )
    return value or None


def _conf_mb(spark: Any, key: str, default: str) -> float | None:
    try:
        return size_mb(spark.conf.get(key, default))
    except Exception:  # a Connect server that does not say: Spark's default
        return size_mb(default)


def budgets(
    spark: Any, params: TrainParams, *, active_rows_mb: float, max_collect_mb: float
) -> tuple[float, float]:
    """``(held_mb, ship_mb)``: the driver's budget for held rows and one job's shipment.

    A job's shipment passes through the JVM heaps as Arrow batches (the executors'
    results, then the driver's collected copy, ~3x the shipment at the peak with the
    cached blocks beside them): at most ``SHIP_SHARE`` of ``spark.driver.maxResultSize``,
    a sixteenth of ``spark.driver.memory`` (64 MB at Spark's default 1g, local mode's
    whole heap) and ``SHIP_MB``.
    """
    local = is_local_master(spark)
    held = active_rows_mb or min(
        driver_limit_mb(max_collect_mb, local=local), HELD_SHARE * available_mb()
    )
    result = _conf_mb(spark, "spark.driver.maxResultSize", "1g") or 4 * SHIP_MB / SHIP_SHARE
    heap = _conf_mb(spark, "spark.driver.memory", "1g") or 1024.0
    ship = min(SHIP_MB, SHIP_SHARE * result, heap / 16, held)
    return held, ship


def train_rows(
    data: TrainingTable, classes: list[str], folds: DataFrame | None = None
) -> DataFrame:
    """Every usable row as ``id`` (a 64-bit hash of the path), ``sha`` (one of its content,
    or of the path where that is missing), ``y`` (the label's index in
    ``classes``, -1 for a class the training set lacks), ``fold`` (from ``folds``: ``id,
    fold``; else 0), ``is_test`` and ``features``."""
    index = F.create_map(*[x for i, c in enumerate(classes) for x in (F.lit(c), F.lit(i))])
    rows = data.frame.select(
        F.xxhash64("path").alias("id"),
        F.xxhash64(F.coalesce(F.col("sha256"), F.col("path"))).alias("sha"),
        F.coalesce(index[F.col("label")], F.lit(-1)).cast("int").alias("y"),
        "is_test",
        "features",
    )
    if folds is None:
        return rows.withColumn("fold", F.lit(0))
    return rows.join(F.broadcast(folds), "id", "left").withColumn(
        "fold", F.coalesce(F.col("fold"), F.lit(-1)).cast("int")
    )


def _folds(data: TrainingTable, params: TrainParams) -> tuple[DataFrame, int]:
    """``id, fold`` of the training rows, and the number of folds: the driver's folds
    (:func:`fold_of` over the training rows in path order), so both searches see the same."""
    keys: pd.DataFrame = (
        data.frame.filter(~F.col("is_test"))
        .select(F.xxhash64("path").alias("id"), "path", "label")
        .orderBy("path")
        .toPandas()
    )
    fold = fold_of(keys["label"].astype(str).to_numpy(), params)
    table = pd.DataFrame({"id": keys["id"].to_numpy(np.int64), "fold": fold})
    return data.frame.sparkSession.createDataFrame(table, "id long, fold int"), int(fold.max()) + 1


def open_passes(
    data: TrainingTable,
    params: TrainParams,
    *,
    active_rows_mb: float = 0,
    max_collect_mb: float = 0,
    scratch: str | None = None,
) -> tuple[SparkPasses, int]:
    """Every usable row cached as blocks (training and test: the duplicate search reads them
    too), with each training row's fold when ``C = "auto"``; and the number of folds (0
    without). The passes ship rows through ``scratch`` where given (else a local folder
    with a local master, else through the JVMs). :meth:`SparkPasses.close` unpersists the
    blocks and removes the scratch folder."""
    classes = data.train_classes
    spark = data.frame.sparkSession
    partitions = max(task_slots(spark), -(-(data.n_train + data.n_test) // PARTITION_ROWS))
    held_mb, ship_mb = budgets(
        spark, params, active_rows_mb=active_rows_mb, max_collect_mb=max_collect_mb
    )
    folds, n_fold = _folds(data, params) if params.C == "auto" else (None, 0)
    if scratch is None and is_local_master(spark):
        scratch = tempfile.mkdtemp(prefix="pool3-train-")
    passes = SparkPasses(
        train_rows(data, classes, folds),
        n_features=data.n_features,
        n_classes=len(classes),
        partitions=partitions,
        held_mb=held_mb,
        ship_mb=ship_mb,
        scratch=scratch,
    )
    log.info(
        "spark newton: %d training rows in %d partitions; the driver holds up to %.0f MB of "
        "active rows, %.0f MB shipped per job at most (%s)",
        data.n_train,
        partitions,
        held_mb,
        passes.ship_mb,
        f"through {scratch}" if scratch else "through the JVMs",
    )
    return passes, n_fold


def warm_start(passes: SparkPasses, n_train: int, params: TrainParams) -> np.ndarray | None:
    """Weights to start from (:func:`pool3.training.newton.method.sample_start`): one training
    row in ``SAMPLE_EVERY`` shipped in one pass and fitted on the driver; None for a table
    too small to sample, or a sample that lacks a class."""
    every = max(SAMPLE_EVERY, -(-n_train // max(passes.held_rows() // 2, 1)))
    if n_train // every < SAMPLE_MIN:
        return None
    started = time.perf_counter()
    store = passes.sample(every, budget_mb=passes.held_mb)
    X, y = store.X[: store.rows()], store.y[: store.rows()]
    sample = ArrayPasses(np.ascontiguousarray(X), y, passes.n_classes)
    fit = sample_start(
        sample, y, n_train, C=numeric_C(params), tol=params.tol, max_iter=params.max_iter
    )
    if fit is None:
        return None
    log.info(
        "spark newton: warm start from %d sampled rows (1 in %d), fitted on the driver in %d "
        "Newton steps, %.1f s",
        len(y),
        every,
        fit.newton_iters,
        time.perf_counter() - started,
    )
    return fit.W


def fit_spark_newton(
    passes: SparkPasses, data: TrainingTable, params: TrainParams, n_fold: int
) -> tuple[Fitted, CSearch | None]:
    """Fit on the cached rows of :func:`open_passes` (module docstring); with ``n_fold``
    folds, ``C = "auto"`` is chosen first. Returns the fit and the search (None when C
    was given)."""
    search, W0, held = None, None, None
    started = time.perf_counter()
    if n_fold:
        found = search_C_newton(passes, passes.n_classes, n_fold, params)
        search, W0, held = found.search, found.warm, found.held
        params = replace(params, C=search.chosen)
        started = time.perf_counter()  # the search's passes are the search's seconds
    elif params.warm_start:
        W0 = warm_start(passes, data.n_train, params)
    fit = fit_newton(
        passes, C=numeric_C(params), tol=params.tol, max_iter=params.max_iter, W0=W0, held=held
    )
    log.info(
        "spark newton: %d Spark jobs (%d passes on the driver), %d Newton steps, %d CG steps "
        "(%d as jobs, in %d steps), %d active rows held at most, %.1f MB collected (%.1f MB "
        "in one job at most), %.1f s, converged=%s",
        passes.spark_jobs,
        passes.jobs - passes.spark_jobs,
        fit.newton_iters,
        fit.cg_iters,
        fit.cg_passes,
        fit.fallback_steps,
        fit.held_peak_rows,
        fit.shipped_bytes / 2**20,
        fit.largest_pass_bytes / 2**20,
        time.perf_counter() - started,
        fit.converged,
    )
    fitted = Fitted.from_newton(
        fit,
        data.train_classes,
        estimator=f"newton (float32, Spark, {passes.partitions} partitions)",
        max_iter=params.max_iter,
        partitions=passes.partitions,
        spark_jobs=passes.spark_jobs,
    )
    # with the caching of the rows and the warm start, as the driver's fit counts its own
    return replace(fitted, seconds=time.perf_counter() - started), search
