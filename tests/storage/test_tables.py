"""pool3.storage.tables: counts of a Parquet folder read by pyarrow equal Spark's own."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pool3.storage.tables import data_files, reason_of, row_count, table_counts


def write_table(spark: SparkSession, where: Path) -> None:
    rows = [
        (f"/in/{i}.jpg", None if i % 5 == 0 else f"c{i % 3}", None if i % 7 else "corrupt: x")
        for i in range(200)
    ]
    rows += [("/in/a:b.jpg", "c1", "missing: gone: again"), ("/in/dup.jpg", None, "odd")]
    rows += [("/in/dup.jpg", "c2", None)]  # a duplicated path
    frame = spark.createDataFrame(rows, "path string, label string, error string")
    frame.repartition(3).write.parquet(str(where))


def spark_counts(spark: SparkSession, where: Path) -> dict:
    table = spark.read.parquet(str(where))
    stats = table.agg(
        F.count("*").alias("rows"),
        F.countDistinct("path").alias("paths"),
        F.count(F.when(F.col("label").isNull(), 1)).alias("unlabelled"),
    ).first()
    reasons = (
        table.filter(F.col("error").isNotNull())
        .groupBy(F.substring_index("error", ":", 1).alias("r"))
        .count()
        .collect()
    )
    return {**stats.asDict(), "reasons": {r["r"]: r["count"] for r in reasons}}


def test_counts_equal_sparks_and_skip_hidden_files(spark, tmp_path):
    where = tmp_path / "t"
    write_table(spark, where)
    (where / "_pool3_summary.json").write_text("{}")
    (where / ".hidden.parquet").write_bytes(b"not parquet")
    (where / "_temporary").mkdir()
    (where / "_temporary" / "part-0.parquet").write_bytes(b"not parquet")
    expected = spark_counts(spark, where)
    got = table_counts(str(where))
    assert got.rows == expected["rows"] == 203
    assert got.paths == expected["paths"] == 202
    assert got.unlabelled == expected["unlabelled"]
    assert got.errors_by_reason == expected["reasons"]
    assert got.errors == sum(expected["reasons"].values())
    assert got.errors_by_reason["missing"] == 1 and got.errors_by_reason["odd"] == 1
    assert row_count(f"file:{where}") == 203
    _, files = data_files(str(where))
    assert files and all(Path(f).name.startswith("part-") for f in files)


def test_a_table_without_label_and_an_empty_folder(spark, tmp_path):
    spark.createDataFrame([("a", None), ("b", "x: y")], "path string, error string").write.parquet(
        str(tmp_path / "p")
    )
    got = table_counts(str(tmp_path / "p"))
    assert (got.rows, got.paths, got.unlabelled, got.errors_by_reason) == (2, 2, None, {"x": 1})
    (tmp_path / "empty").mkdir()
    empty = table_counts(str(tmp_path / "empty"))
    assert (empty.rows, empty.paths, empty.errors) == (0, 0, 0)


def test_reason_of_is_the_text_before_the_first_colon():
    assert reason_of("corrupt: bad: header") == "corrupt"
    assert reason_of("no colon") == "no colon"
