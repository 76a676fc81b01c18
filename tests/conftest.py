"""Shared fixtures: ONE real local Spark session for the whole test run, and the repo root.

The session is built through :func:`pool3.session.build_session` (the code under test), on
``local[2]`` bound to 127.0.0.1, without UI, with 2 shuffle partitions. ``POOL3_HOME`` is left
alone on purpose: the model cache (~/.cache/pool3) is expensive to rebuild.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pool3.config import Config, load_config
from pool3.session import build_session

# One standalone cluster for the whole run, shared by every module that asks for it.
pytest_plugins = ["cluster"]

REPO_ROOT = Path(__file__).resolve().parents[1]

SPARK_TEST_OVERRIDES: dict[str, object] = {
    "spark.master": "local[2]",
    "spark.app_name": "pool3-tests",
    "spark.log_level": "ERROR",
    "spark.extra": {
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": "2g",
    },
}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout (holds ``lib/``, ``conf/``, ``tests/``)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def spark_config() -> Config:
    """The configuration the ``spark`` fixture is built from (no profile, no ``POOL3_*`` env)."""
    return load_config(overrides=SPARK_TEST_OVERRIDES, env={})


@pytest.fixture(scope="session")
def spark(spark_config: Config) -> Iterator[SparkSession]:
    """The test run's one SparkSession (``local[2]``), stopped when the run ends."""
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = build_session(spark_config)
    yield session
    session.stop()
