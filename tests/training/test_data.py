"""The driver's float32 array read from the feature table's Parquet parts (no JVM collect)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from featuredata import SCHEMA, digits_table
from pool3.config import TrainParams
from pool3.errors import DataError
from pool3.storage.fs import literal
from pool3.training.table.data import collect_split, driver_mb
from pool3.training.table.rules import prepare


def _write(spark: SparkSession, frame: pd.DataFrame, where: str) -> None:
    columns = ["path", "label", "sha256", "features", "model", "error"]
    spark.createDataFrame(frame[columns], SCHEMA).repartition(3).write.parquet(where)


def test_rows_come_from_the_parts_in_split_order(spark, tmp_path):
    frame = digits_table(4, 20)
    # a folder name Hadoop percent-encodes in its URIs: read back as named
    where = str(tmp_path / "fm [2019] 100% a+b")
    _write(spark, frame, where)
    data = prepare(spark.read.parquet(literal(where)), TrainParams())  # as read_committed
    split = collect_split(data, 2048)
    assert split.X.dtype == np.float32 and split.X.flags.c_contiguous
    assert split.X.shape == (80, 2048) and split.n_train == data.n_train
    # training rows first, then test rows, each by path; views of one array
    assert list(split.paths_train) == sorted(split.paths_train)
    assert list(split.paths_test) == sorted(split.paths_test)
    assert split.X_train.base is split.X and split.X_test.base is split.X
    assert split.is_test.tolist() == [False] * data.n_train + [True] * data.n_test
    by_path = frame.set_index("path")
    expected = np.stack(by_path.loc[list(split.paths), "features"].to_numpy()).astype(np.float32)
    np.testing.assert_array_equal(split.X, expected)
    assert list(split.y) == list(by_path.loc[list(split.paths), "label"])
    assert list(split.sha256) == list(by_path.loc[list(split.paths), "sha256"])
    tested = {r["path"] for r in data.frame.filter("is_test").select("path").collect()}
    assert set(split.paths_test) == tested


def test_error_and_unlabelled_rows_stay_out(spark, tmp_path):
    frame = digits_table(3, 10)
    frame.loc[0, "error"] = "decode: not an image"
    frame.loc[0, "features"] = None
    frame.loc[1, "label"] = None
    _write(spark, frame, str(tmp_path / "t"))
    split = collect_split(prepare(spark.read.parquet(str(tmp_path / "t")), TrainParams()), 2048)
    assert len(split.y) == 28 and frame.path[0] not in split.paths
    assert frame.path[1] not in split.paths


def test_a_table_without_parquet_files_is_collected_through_spark(spark, tmp_path):
    frame = digits_table(3, 10)
    columns = ["path", "label", "sha256", "features", "model", "error"]
    in_memory = spark.createDataFrame(frame[columns], SCHEMA)
    got = collect_split(prepare(in_memory, TrainParams()), 2048)
    _write(spark, frame, str(tmp_path / "t"))
    want = collect_split(prepare(spark.read.parquet(str(tmp_path / "t")), TrainParams()), 2048)
    assert got.n_train == want.n_train and list(got.paths) == list(want.paths)
    np.testing.assert_array_equal(got.X, want.X)
    np.testing.assert_array_equal(got.y, want.y)


def test_a_path_in_two_rows_is_refused(spark, tmp_path):
    frame = digits_table(3, 10)
    frame.loc[1, "path"] = frame.loc[0, "path"]
    _write(spark, frame, str(tmp_path / "t"))
    data = prepare(spark.read.parquet(str(tmp_path / "t")), TrainParams())
    with pytest.raises(DataError, match=r"1 paths appear in more than one usable row"):
        collect_split(data, 2048)


def test_driver_memory_is_the_array_and_the_keys():
    assert driver_mb(200_000, 2048) == pytest.approx(200_000 * (8192 + 200) / 2**20)


def test_an_error_row_sharing_a_usable_rows_path_is_not_read(spark, tmp_path):
    """Only the usable row of a path is read (an older error row of the same file, e.g.
    from an incremental run, neither fails the read nor overwrites the vector)."""
    frame = digits_table(3, 10)
    stale = frame.iloc[[0, 1]].copy()
    stale["error"] = "decode: truncated"
    stale["features"] = [None, [0.0] * 2048]  # an error row with and without features
    _write(spark, pd.concat([frame, stale], ignore_index=True), str(tmp_path / "t"))
    split = collect_split(prepare(spark.read.parquet(str(tmp_path / "t")), TrainParams()), 2048)
    assert len(split.y) == 30
    by_path = frame.set_index("path")
    i = list(split.paths).index(frame.path[1])
    np.testing.assert_array_equal(split.X[i], np.asarray(by_path.loc[frame.path[1], "features"]))


def test_one_class_in_a_fit_is_refused():
    from pool3.training.solvers.driver import fit_newton_arrays

    X = np.ones((4, 8), dtype=np.float32)
    y = np.array(["a", "a", "b", "b"])
    with pytest.raises(DataError, match=r"2\+ classes among the rows it fits, got 1 \('a'\)"):
        fit_newton_arrays(X, y, TrainParams(), rows=np.array([True, True, False, False]))
