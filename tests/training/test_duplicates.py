"""Duplicates, leakage, suspected label errors and the accuracy interval, on real Spark.

Features: scikit-learn's digits projected to 2048 non-negative dimensions
(``featuredata``), whose split the tests set by hand so that planted copies land where the
test needs them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from featuredata import digits_features, feature_table
from pool3.duplicates import lsh as near_lsh
from pool3.duplicates import search as dup
from pool3.duplicates.search import find_duplicates
from pool3.errors import DataError
from pool3.training.evaluation.metrics import metrics, wilson_interval
from pool3.training.evaluation.quality import accuracy_without, suspected_label_errors
from pool3.training.table.data import Split

SCHEMA = "path string, label string, sha256 string, features array<float>, is_test boolean"


def _frame(spark, pdf: pd.DataFrame):
    pdf = pdf.assign(features=[[float(v) for v in x] for x in pdf["features"]])
    return spark.createDataFrame(pdf[["path", "label", "sha256", "features", "is_test"]], SCHEMA)


@pytest.fixture(scope="module")
def planted():
    """60 digits (every 4th in the test set) plus five planted rows."""
    X, y = digits_features(6, 10)
    base = feature_table(X, y).assign(is_test=[i % 4 == 0 for i in range(len(y))])
    rng = np.random.default_rng(3)
    rows = []

    def plant(i: int, path: str, *, label=None, is_test=None, noise=0.0, same_bytes=True):
        row = base.iloc[i].copy()
        row["path"] = path
        if label is not None:
            row["label"] = label
        if is_test is not None:
            row["is_test"] = is_test
        if noise:
            x = np.asarray(row["features"], dtype=np.float32)
            row["features"] = np.maximum(x + noise * x.std() * rng.standard_normal(x.shape), 0)
        if not same_bytes:
            row["sha256"] = f"{len(rows):064x}"
        rows.append(row)

    plant(1, "copy/exact_train_to_test.jpg", is_test=True)  # exact, straddles: leak
    plant(2, "copy/exact_conflict.jpg", label="nine")  # exact, other label
    plant(3, "copy/near_train_to_test.jpg", is_test=True, noise=0.03, same_bytes=False)
    plant(5, "copy/near_conflict.jpg", label="nine", noise=0.03, same_bytes=False)
    plant(6, "copy/not_near.jpg", noise=2.0, same_bytes=False)  # noisy: cosine < 0.98
    table = pd.concat([base, pd.DataFrame(rows)], ignore_index=True)
    return table, base


def _split(table: pd.DataFrame) -> Split:
    """The table as the driver solvers hold it: training rows first, then by path."""
    rows = table.sort_values(["is_test", "path"], ignore_index=True)
    X = np.stack(rows["features"].to_numpy()).astype(np.float32)
    return Split(
        X=np.ascontiguousarray(X),
        y=rows["label"].to_numpy(dtype=str),
        paths=rows["path"].to_numpy(dtype=str),
        n_train=int((~rows["is_test"]).sum()),
        sha256=rows["sha256"].to_numpy(dtype=object),
    )


def _search(spark, table: pd.DataFrame, method: str):
    with pytest.MonkeyPatch.context() as patch:
        if method.startswith("lsh"):
            patch.setattr(dup, "EXACT_MAX_ROWS", 0)
        rows = _split(table) if method.endswith("(driver)") else None
        return find_duplicates(_frame(spark, table), threshold=0.98, seed=42, rows=rows)


@pytest.fixture(scope="module", params=["exact", "lsh", "exact (driver)", "lsh (driver)"])
def found(request, spark, planted):
    """All the searches: all pairs (small tables) and LSH (large ones), with the features
    on Spark or in the driver solvers' array."""
    result = _search(spark, planted[0], request.param)
    assert result.method == request.param.split()[0]  # where it ran is not part of it
    return result


def test_driver_lsh_finds_what_spark_lsh_finds(spark, planted):
    """The same hyperplanes, keys, buckets and estimate: the same pairs and counts."""
    on_spark = _search(spark, planted[0], "lsh")
    on_driver = _search(spark, planted[0], "lsh (driver)")
    assert on_driver.counts == on_spark.counts
    assert _pairs(on_driver).keys() == _pairs(on_spark).keys()
    assert on_driver.leaked_test == on_spark.leaked_test


def _pairs(found) -> dict[tuple[str, str], dict]:
    return {tuple(sorted(p["paths"])): p for p in found.pairs}


def _cosine(table: pd.DataFrame, a: str, b: str) -> float:
    x, z = (np.asarray(table.set_index("path").loc[p, "features"], np.float64) for p in (a, b))
    return float(x @ z / np.linalg.norm(x) / np.linalg.norm(z))


def test_planted_pairs_are_found_and_tagged(planted, found):
    table, base = planted
    pairs = _pairs(found)
    exact = pairs[tuple(sorted((base.path[1], "copy/exact_train_to_test.jpg")))]
    assert exact["kind"] == "exact" and exact["straddles"] and not exact["label_conflict"]
    conflict = pairs[tuple(sorted((base.path[2], "copy/exact_conflict.jpg")))]
    assert conflict["kind"] == "exact" and conflict["label_conflict"]
    assert sorted(conflict["labels"]) == sorted([base.label[2], "nine"])
    near = pairs[tuple(sorted((base.path[3], "copy/near_train_to_test.jpg")))]
    assert near["kind"] == "near" and near["straddles"] and 0.98 <= near["cosine"] < 1
    assert near["cosine"] == pytest.approx(
        _cosine(table, base.path[3], "copy/near_train_to_test.jpg"), abs=1e-5
    )
    assert pairs[tuple(sorted((base.path[5], "copy/near_conflict.jpg")))]["label_conflict"]
    assert not [p for p in pairs if "copy/not_near.jpg" in p]
    assert _cosine(table, base.path[6], "copy/not_near.jpg") < 0.98


def test_counts_and_leaked_test_images(planted, found):
    counts = found.counts
    assert counts["exact_pairs"] == 2 and counts["exact_label_conflicts"] == 1
    assert counts["exact_straddling"] == 1
    assert counts["near_pairs"] == len([p for p in found.pairs if p["kind"] == "near"]) >= 2
    assert counts["pairs"] == len(found.pairs)
    assert counts["unchecked_rows"] == 0
    assert {"copy/exact_train_to_test.jpg", "copy/near_train_to_test.jpg"} <= found.leaked_test
    for path in found.leaked_test:
        assert planted[0].set_index("path").loc[path, "is_test"]


def test_near_search_reports_only_what_all_pairs_finds(planted, found):
    """The exact search finds every pair; LSH may miss one just above the threshold
    (recall: pool3.duplicates.lsh) but never reports one below it, and finds the
    planted copies (cosine ~0.999)."""
    table, _ = planted
    X = np.stack(table["features"].to_numpy()).astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    cos = np.triu(X @ X.T, 1)
    sha = table["sha256"].to_numpy()
    expected = {
        tuple(sorted((table.path[i], table.path[j])))
        for i, j in zip(*np.nonzero(cos >= 0.98), strict=True)
        if sha[i] != sha[j]
    }
    near = {k for k, p in _pairs(found).items() if p["kind"] == "near"}
    assert near == expected if found.method.startswith("exact") else near <= expected
    assert {k for k in expected if any("copy/near" in p for p in k)} <= near


@pytest.mark.parametrize("method", ["lsh", "lsh (driver)"])
def test_oversize_buckets_are_counted_not_expanded(spark, planted, monkeypatch, method):
    table, _ = planted
    monkeypatch.setattr(near_lsh, "MAX_BUCKET", 1)
    small = _search(spark, table, method)
    assert small.counts["near_pairs"] == 0 and small.counts["unchecked_rows"] > 0
    assert small.counts["exact_pairs"] == 2  # exact groups never need buckets


def test_accuracy_without_the_leaked_test_images():
    y_true = np.array(["a", "a", "b", "b"])
    y_pred = np.array(["a", "b", "b", "b"])
    paths = np.array(["p0", "p1", "p2", "p3"])
    assert accuracy_without(y_true, y_pred, paths, set()) is None
    out = accuracy_without(y_true, y_pred, paths, {"p2", "p3"})
    assert out["leaked_test_images"] == 2 and out["n_test"] == 2
    assert out["accuracy"] == 0.5 and out["leaked_accuracy"] == 1.0
    assert out["accuracy_ci95"] == list(wilson_interval(1, 2))


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (49, 60), (955, 1000), (1, 3)])
def test_wilson_interval_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_wilson_interval_needs_trials_and_metrics_carry_it():
    with pytest.raises(DataError, match="n >= 1"):
        wilson_interval(0, 0)
    m = metrics(["a", "b", "a", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert m["accuracy_ci95"] == list(wilson_interval(3, 4))


def test_suspected_label_errors_are_confident_disagreements_worst_first():
    classes = ("cat", "dog", "fox")
    scores = np.array(
        [
            [2.0, -1.0, -1.0],  # cat, right
            [-1.0, 1.5, -1.0],  # labelled cat, looks like dog by 2.5
            [0.1, 0.0, -1.0],  # labelled dog, cat by only 0.1: not confident
            [-1.0, -1.0, 3.0],  # labelled dog, fox by 4.0
            [-1.0, 2.0, -1.0],  # labelled "wolf": a class the model does not know
        ]
    )
    labels = ["cat", "cat", "dog", "dog", "wolf"]
    paths = [f"p{i}" for i in range(5)]
    got = suspected_label_errors(paths, labels, scores, classes, split="test")
    assert [(s["path"], s["predicted"], s["margin"]) for s in got] == [
        ("p3", "fox", 4.0),
        ("p1", "dog", 2.5),
    ]
    assert all(s["split"] == "test" for s in got)
    assert (
        suspected_label_errors(paths, labels, scores, classes, split="test", top=1)[0]["path"]
        == "p3"
    )
