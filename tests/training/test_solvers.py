"""The solvers reach liblinear's solution on the same table and split (issue 23, point 4):
``newton`` on the driver and ``spark`` over rows cached on the executors, real Spark jobs."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from featuredata import digits_table, table
from pool3.config import TrainParams
from pool3.errors import ResourceError, spark_failure
from pool3.training.evaluation.result import TrainResult
from pool3.training.solvers.choose import Choice, choose_solver
from pool3.training.solvers.driver import train_and_evaluate
from pool3.training.solvers.spark_solver import train_and_evaluate_spark
from pool3.training.table.rules import TrainingTable, prepare

#: A tight tol: at liblinear's default 1e-4 liblinear itself stops ~4% from the optimum
#: (issue 23's note), so two correct solvers may differ by more than the 2% asked.
PARAMS = TrainParams(tol=1e-5, dual=False)


@pytest.fixture(scope="module")
def data(spark: SparkSession) -> TrainingTable:
    return prepare(table(spark, digits_table(10, 60)), PARAMS)


@pytest.fixture(scope="module")
def fits(data: TrainingTable) -> dict[str, TrainResult]:
    out = {
        name: train_and_evaluate(data, PARAMS, choice=Choice(name, "test"))
        for name in ("liblinear", "newton")
    }
    out["spark"] = train_and_evaluate_spark(data, PARAMS, choice=Choice("spark", "test"))
    return out


def weights(result: TrainResult) -> np.ndarray:
    model = result.classifier
    return np.hstack([model.coef, model.intercept[:, None]]).astype(np.float64)


@pytest.mark.parametrize("solver", ["newton", "spark"])
def test_reaches_liblinears_solution(fits, solver):
    ref, got = fits["liblinear"], fits[solver]
    assert got.classifier.classes == ref.classifier.classes
    W, W_ref = weights(got), weights(ref)
    assert np.linalg.norm(W - W_ref) / np.linalg.norm(W_ref) <= 0.02
    np.testing.assert_array_equal(got.paths_test, ref.paths_test)  # the same split
    assert np.mean(got.y_pred == ref.y_pred) >= 0.995
    assert abs(got.metrics["accuracy"] - ref.metrics["accuracy"]) <= 0.003
    meta = got.classifier.meta
    assert meta["converged"] is True and meta["passes"] > 0 and meta["n_iter"] > 0


def test_spark_runs_the_driver_iterations(fits):
    """Same iterations, other summation order: about as many passes, every CG step on the
    driver's rows, weights ~equal. At w = 0 every row is active: the first Spark job ships
    all 480 to the driver, whose passes then run there (no Spark job per step)."""
    driver, spark = fits["newton"].classifier.meta, fits["spark"].classifier.meta
    assert driver["estimator"] == "newton (float32, driver)"
    assert spark["estimator"].startswith("newton (float32, Spark, ")
    assert abs(driver["passes"] - spark["passes"]) <= max(0.2 * driver["passes"], 3)
    stats = spark["newton"]
    assert stats["passes"] == stats["newton_steps"] + 1 and spark["spark_jobs"] == 1
    assert stats["cg_passes"] == 0 and stats["cg_steps"] > stats["newton_steps"]
    assert stats["active_rows_peak"] == 480 and stats["collected_bytes"] >= 480 * 2048 * 4
    W, W_spark = weights(fits["newton"]), weights(fits["spark"])
    assert np.linalg.norm(W - W_spark) / np.linalg.norm(W) <= 0.005


# 0.05 MB: every CG step a Spark job (~85 s on 2 cores): in the slow run (CI runs it too)
@pytest.mark.parametrize("budget_mb", [pytest.param(0.05, marks=pytest.mark.slow), 3.0])
def test_spark_falls_back_to_cg_as_jobs_when_the_driver_cannot_hold_the_rows(data, fits, budget_mb):
    """0.05 MB holds 6 of the 480 rows: every CG step is a Spark job (the distributed CG);
    3 MB holds ~380: the early steps (every row active) run as jobs, later ones on the
    driver once the jobs have shipped the active rows. The same model either way."""
    result = train_and_evaluate_spark(
        data, PARAMS, choice=Choice("spark", "test"), active_rows_mb=budget_mb
    )
    stats = result.classifier.meta["newton"]
    assert stats["cg_passes"] > 0 and stats["fallback_steps"] > 0
    assert result.classifier.meta["spark_jobs"] == stats["passes"]  # never all rows held
    assert stats["active_rows_peak"] <= budget_mb * 2**20 / (4 * 2048)
    if budget_mb < 1:
        assert stats["fallback_steps"] == stats["newton_steps"]
        assert stats["passes"] > stats["cg_passes"] >= stats["cg_steps"]
    else:
        assert stats["fallback_steps"] < stats["newton_steps"]
        assert stats["cg_passes"] < stats["cg_steps"]
    W, W_ref = weights(result), weights(fits["spark"])
    assert np.linalg.norm(W - W_ref) / np.linalg.norm(W_ref) <= 0.005
    assert np.mean(result.y_pred == fits["liblinear"].y_pred) >= 0.995


def test_binary_newton_has_one_row_scoring_classes_1(spark):
    data = prepare(table(spark, digits_table(2, 60)), PARAMS)
    ref = train_and_evaluate(data, PARAMS, choice=Choice("liblinear", "test"))
    got = train_and_evaluate(data, PARAMS, choice=Choice("newton", "test"))
    assert got.classifier.coef.shape == (1, 2048) == ref.classifier.coef.shape
    W, W_ref = weights(got), weights(ref)
    assert np.linalg.norm(W - W_ref) / np.linalg.norm(W_ref) <= 0.02


def test_auto_is_newton_while_the_array_fits_the_driver_then_spark():
    def pick(n: int, mb: float, free: float = 64_000.0) -> str:
        params = TrainParams()  # LinearSVC's default objective
        return choose_solver(params, n_train=n, table_mb=mb, max_collect_mb=4096, free_mb=free).name

    assert pick(1_000, 10) == "newton"
    assert pick(40_000, 330) == "newton"
    assert pick(600_000, 4700) == "spark"  # above max_collect_mb
    assert pick(200_000, 1600, free=2_000) == "spark"  # above what the driver has now


def test_memory_failures_in_spark_jobs_name_the_setting(spark):
    def exhaust(batches):
        for _ in batches:
            raise MemoryError("cannot allocate 64 GiB for a block")
        yield from ()

    frame = spark.range(4).mapInPandas(exhaust, "id long")
    with pytest.raises(ResourceError) as err, spark_failure("fitting"):
        frame.collect()
    text = str(err.value)
    assert "ran out of memory while fitting" in text and "MemoryError" in text
    assert "spark.driver.memory" in text and "spark.executor.memory" in text
    assert err.value.exit_code == 8


def test_a_lost_jvm_is_reported_as_such():
    """A py4j call to a JVM that is gone (nothing listens on the port): what the driver
    sees after its JVM died of OutOfMemoryError."""
    from py4j.java_gateway import GatewayParameters, JavaGateway

    with socket.socket() as probe:  # a free port: nothing listens there afterwards
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port))
    lost = r"connection to Spark's JVM was lost while fitting"
    with pytest.raises(ResourceError, match=lost), spark_failure("fitting"):
        gateway.jvm.java.lang.System.currentTimeMillis()
    # the same error outside py4j (e.g. a store refusing a connection) is not the JVM's
    with pytest.raises(ConnectionRefusedError), spark_failure("fitting"):
        raise ConnectionRefusedError(111, "Connection refused")


def test_other_spark_errors_pass_unchanged(spark):
    with pytest.raises(Exception, match=r"DIVIDE_BY_ZERO|divide"), spark_failure("fitting"):
        spark.range(1).select((F.lit(1) / F.lit(0)).alias("x")).collect()
    with pytest.raises(ValueError, match="plain"), spark_failure("fitting"):
        raise ValueError("plain")


def test_auto_keeps_liblinear_for_the_objectives_newton_does_not_fit():
    for other in ({"loss": "hinge"}, {"penalty": "l1", "dual": False}):
        choice = choose_solver(
            TrainParams(**other), n_train=1_000, table_mb=10, max_collect_mb=4096, free_mb=1e4
        )
        assert choice.name == "liblinear" and "only liblinear fits" in choice.why
