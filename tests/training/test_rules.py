"""The training rules and the one split, on real Spark: the same for every solver."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.model_selection import train_test_split

from featuredata import FINGERPRINT, blob_frame, digits_table, table
from pool3.config import TrainParams
from pool3.errors import DataError, InputError
from pool3.training.table.data import collect_split
from pool3.training.table.rules import prepare

SPARK = TrainParams(solver="mllib")


@pytest.fixture(scope="module")
def three() -> pd.DataFrame:
    return blob_frame(3, 40)


def test_paths(frame: DataFrame, **kwargs: object) -> set[str]:
    """The test set that :func:`prepare` chooses, as paths."""
    data = prepare(frame, TrainParams(**kwargs))
    return {r["path"] for r in data.frame.filter("is_test").select("path").collect()}


test_paths.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


# --- data checks and split (no fit) -------------------------------------------------------


def test_split_is_stratified_reproducible_and_independent_of_partitioning(spark, three):
    df = table(spark, three)

    first = test_paths(df)
    assert first == test_paths(df.orderBy(F.col("path").desc()).repartition(5))
    labels = three.set_index("path").loc[sorted(first), "label"]
    assert labels.value_counts().to_dict() == {"c00": 8, "c01": 8, "c02": 8}  # 20% of 40
    assert test_paths(df, seed=7) != first
    plain = test_paths(df, stratify=False)
    assert plain == test_paths(df.repartition(3), stratify=False)
    assert 12 <= len(plain) <= 36 and plain != first  # ~24 of 120, by hash


def test_unusable_rows_are_skipped_and_counted(spark, caplog):
    frame = blob_frame(2, 10)
    frame.loc[0, ["error", "features"]] = ["corrupt: bad", None]
    frame.loc[1, "label"] = None
    frame.loc[2, "label"] = "  "
    with caplog.at_level(logging.INFO, logger="pool3"):
        data = prepare(table(spark, frame), TrainParams(stratify=False))
    assert data.counts == {"rows_total": 20, "rows_error": 1, "rows_unlabelled": 2, "rows_used": 17}
    assert data.frame.count() == 17 and data.n_train + data.n_test == 17
    assert "2 rows without a label" in caplog.text and frame.loc[1, "path"] in caplog.text


def test_single_class_refused_naming_it(spark):
    frame = blob_frame(1, 12)
    with pytest.raises(DataError, match=r"only 'c00' \(12 images\)"):
        prepare(table(spark, frame), SPARK)


def test_mixed_fingerprints_refused_with_counts(spark):
    frame = blob_frame(2, 10)
    frame.loc[15:, "model"] = "other:9"
    with pytest.raises(DataError) as err:
        prepare(table(spark, frame), SPARK)
    msg = str(err.value)
    assert f"'{FINGERPRINT}': 15 rows" in msg and "'other:9': 5 rows" in msg
    assert "Re-featurize" in msg


def test_bad_features_refused_naming_rows(spark):
    frame = blob_frame(2, 10)
    nan_row = frame.at[3, "features"].copy()
    nan_row[5] = np.nan
    frame.at[3, "features"] = nan_row
    with pytest.raises(DataError, match="1 rows have NaN or infinite") as err:
        prepare(table(spark, frame), SPARK)
    assert frame.at[3, "path"] in str(err.value)
    frame = blob_frame(2, 10)
    frame.at[4, "features"] = frame.at[4, "features"][:100]
    with pytest.raises(DataError, match=r"length \[100\], expected 2048"):
        prepare(table(spark, frame), SPARK)


def test_single_image_class_cannot_be_stratified(spark):
    frame = pd.concat([blob_frame(2, 10), blob_frame(1, 1).assign(label="lonely", path="x/1")])
    with pytest.raises(DataError, match=r"'lonely'.*--no-stratify"):
        prepare(table(spark, frame), SPARK)


def test_missing_columns_refused_naming_them(spark, three):
    with pytest.raises(InputError, match=r"lacks columns \['model', 'error'\]"):
        prepare(table(spark, three).drop("model", "error"), SPARK)


def test_collected_arrays_are_float32_contiguous_and_sorted(spark):
    data = prepare(table(spark, digits_table(10, 12)), TrainParams())
    parts = collect_split(data, 2048)
    assert parts.X_train.shape == (100, 2048) and parts.X_test.shape == (20, 2048)  # 2 of 12
    for X in (parts.X_train, parts.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
    assert list(parts.paths_test) == sorted(parts.paths_test)
    assert not set(parts.paths_test) & set(parts.paths_train)
    by_path = digits_table(10, 12).set_index("path")
    for path, x, label in zip(parts.paths_test, parts.X_test, parts.y_test, strict=True):
        np.testing.assert_array_equal(by_path.loc[path, "features"], x)
        assert by_path.loc[path, "label"] == label


# --- the content split ---------------------------------------------------------------------


def test_content_split_keeps_exact_duplicates_on_one_side(spark):
    frame = blob_frame(2, 20)
    # 8 copies of 4 images under new names, two of them under the other label (a conflict)
    copies = frame.iloc[[0, 1, 20, 21] * 2].copy()
    copies["path"] = [f"copies/{i}.jpg" for i in range(len(copies))]
    copies.iloc[[2, 3], copies.columns.get_loc("label")] = "c00"
    both = pd.concat([frame, copies], ignore_index=True)
    for stratify in (True, False):
        for seed in (1, 2, 3, 42):
            tested = test_paths(table(spark, both), seed=seed, stratify=stratify)
            side = both.assign(test=both["path"].isin(tested)).groupby("sha256")["test"].nunique()
            assert side.max() == 1, (seed, stratify)  # no content both trained on and tested


def test_content_split_is_stable_when_the_collection_grows(spark):
    small = blob_frame(2, 30)
    big = pd.concat([small, feature_table_like(blob_frame(2, 30, seed=1), "more")])
    shared = set(small["path"])
    before = test_paths(table(spark, small), stratify=False)
    after = test_paths(table(spark, big), stratify=False) & shared
    assert before == after  # unstratified: an image's side depends on its content only
    before = test_paths(table(spark, small))
    after = test_paths(table(spark, big)) & shared
    # stratified: only images between a class's old and new cut change side
    assert len(before & after) >= len(before) - 4, (len(before), len(after))


def feature_table_like(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return frame.assign(path=[p.replace("imgs/", f"{prefix}/", 1) for p in frame["path"]])


def test_sklearn_split_is_the_tutorials_train_test_split_over_sorted_paths(spark, three):
    frame = three.sample(frac=1.0, random_state=3)  # row order must not matter
    for stratify in (True, False):
        got = test_paths(table(spark, frame), split="sklearn", stratify=stratify)
        rows = three.sort_values("path")
        _, expected = train_test_split(
            rows["path"].to_numpy(),
            test_size=0.2,
            random_state=42,
            stratify=rows["label"].to_numpy() if stratify else None,
        )
        assert got == set(expected)


def test_the_split_is_recorded(spark, three):
    content = prepare(table(spark, three), TrainParams())
    assert content.split["method"] == "content" and "sha256" in content.split["rule"]
    assert (content.split["seed"], content.split["test_size"]) == (42, 0.2)
    tutorial = prepare(table(spark, three), TrainParams(split="sklearn", stratify=False))
    assert tutorial.split["method"] == "sklearn" and not tutorial.split["stratify"]
