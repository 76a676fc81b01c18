"""Shared fixtures: ONE real local Spark session for the whole test run, and the repo root.

The session is built through :func:`pool3.session.build_session` (the code under test), on
``local[2]`` bound to 127.0.0.1, without UI, with 2 shuffle partitions. ``POOL3_HOME`` is left
alone on purpose: the model cache (~/.cache/pool3) is expensive to rebuild.

The layers: :func:`pytest_collection_modifyitems` marks every test from the fixtures it uses,
directly or through other fixtures (``FIXTURE_MARKERS``), so that ``make test-fast``
(``-m "$(FAST)"``, no JVM) can leave them out. A test that starts a JVM without a fixture (a
``pool3`` command in a subprocess, a session of its own) carries ``pytest.mark.spark`` itself.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from pool3.config import Config, load_config
from pool3.session import build_session

# One standalone cluster for the whole run, shared by every module that asks for it.
pytest_plugins = ["cluster", "connect", "mlflowserver"]

REPO_ROOT = Path(__file__).resolve().parents[1]

#: marker added to a test that uses the fixture, directly or through another fixture
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "spark": ("spark",),
    "standalone_cluster": ("cluster", "spark"),
    "connect_server": ("connect", "spark"),
    "mlflow_server": ("mlflow",),
    "featurizer": ("heavy",),  # the real model, loaded once per run (~15 s)
}
#: markers that imply another (a cluster or a Connect server is a JVM too)
IMPLIED_MARKERS: dict[str, tuple[str, ...]] = {"cluster": ("spark",), "connect": ("spark",)}


def layer_markers(item: pytest.Item) -> set[str]:
    """The layer markers ``item`` needs: from the fixtures it uses (transitively, as pytest's
    ``fixturenames`` holds the closure) and implied by the markers it carries.

    A test module adds its own fixtures with a ``FIXTURE_MARKERS`` dict of the same shape (a
    module-scoped fixture that runs ``pool3`` in a subprocess needs a JVM too)."""
    table = {**FIXTURE_MARKERS, **getattr(getattr(item, "module", None), "FIXTURE_MARKERS", {})}
    names = set(getattr(item, "fixturenames", ()))
    needed = {m for fixture in names & table.keys() for m in table[fixture]}
    carried = {mark.name for mark in item.iter_markers()}
    needed |= {m for mark in carried & IMPLIED_MARKERS.keys() for m in IMPLIED_MARKERS[mark]}
    return needed - carried


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the layers its fixtures need (``spark``, ``cluster``, ...)."""
    for item in items:
        for name in sorted(layer_markers(item)):
            item.add_marker(name)


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


def idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    """``array`` as an IDX file (big-endian), type code 0x08 for uint8, 0x0B for int16."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


#: images per class in the small Fashion-MNIST the tests write (train, t10k)
SMALL_FASHION_MNIST = {"train": 6, "t10k": 4}


@pytest.fixture(scope="session")
def small_fashion_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Fashion-MNIST folder in the Debian package's layout, written by the test run: gzipped
    IDX files of random 28x28 uint8 images, ``SMALL_FASHION_MNIST[split]`` per class."""
    root = tmp_path_factory.mktemp("fashion-mnist")
    rng = np.random.default_rng(7)
    for split, per_class in SMALL_FASHION_MNIST.items():
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        (root / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images, 8)))
        (root / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 8)))
    return root


@pytest.fixture(scope="session")
def featurizer():
    """The real default featurizer (shipped 2015 weights), built once for the run."""
    from pool3.model import load_featurizer

    return load_featurizer("default")


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
