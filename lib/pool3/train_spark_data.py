"""Training data on Spark: usable rows, the driver path's checks, a reproducible split.

The rules of :mod:`pool3.training_data` (which works on pandas on the driver), applied to
the feature DataFrame (``path, label, features, model, error``) so that only counts, the
class list and a few example paths reach the driver.

The split does not depend on partitioning or on the order rows are read in: each image
gets ``h = xxhash64(path, seed)``. With ``stratify=True`` the test set of a class of ``n``
images is its ``round(test_size * n)`` images with the smallest ``(h, path)`` (at least
one, at most ``n - 1``), so every class is in both sets, as in the driver path. With
``stratify=False`` an image is in the test set when ``h mod 2**20 < test_size * 2**20``.
The rows chosen differ from scikit-learn's ``train_test_split`` (a permutation of row
positions), but a re-run on the same paths with the same seed chooses the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pool3.errors import DataError
from pool3.train_params import TrainParams
from pool3.training_data import FEATURE_DIM, check_columns, single_fingerprint

log = logging.getLogger(__name__)

_EXAMPLES = 3
_BUCKETS = 1 << 20


@dataclass(frozen=True, eq=False)
class SparkData:
    """Usable rows of a feature table with their split, and what the driver knows of them.

    Attributes
    ----------
    frame : DataFrame
        ``path, label, features, is_test`` (boolean), usable rows only.
    fingerprint : str
        The single feature-model fingerprint of the usable rows.
    counts : dict
        ``rows_total``, ``rows_error``, ``rows_unlabelled``, ``rows_used``.
    train_counts, test_counts : dict of str to int
        Images per class in each set (every class of the data appears in ``test_counts``,
        possibly with 0).
    """

    frame: DataFrame
    fingerprint: str
    counts: dict[str, int]
    train_counts: dict[str, int]
    test_counts: dict[str, int]

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels of the usable rows."""
        return sorted(self.test_counts)

    @property
    def train_classes(self) -> list[str]:
        """Sorted labels with at least one training image (the classifier's classes)."""
        return sorted(c for c, n in self.train_counts.items() if n > 0)

    @property
    def n_train(self) -> int:
        return sum(self.train_counts.values())

    @property
    def n_test(self) -> int:
        return sum(self.test_counts.values())


def _examples(table: DataFrame, condition: Column) -> str:
    paths = [str(r["path"]) for r in table.filter(condition).select("path").limit(4).collect()]
    shown = ", ".join(repr(p) for p in paths[:_EXAMPLES])
    return shown + (", ..." if len(paths) > _EXAMPLES else "")


def _conditions(n_features: int) -> dict[str, Column]:
    error = F.col("error").isNotNull()
    labelled = F.col("label").isNotNull() & ~F.col("label").rlike(r"^\s*$")
    used = ~error & labelled
    feats = F.col("features")
    bad_value = F.exists(feats, lambda x: x.isNull() | F.isnan(x) | (F.abs(x) == float("inf")))
    return {
        "error": error,
        "unlabelled": ~error & ~labelled,
        "used": used,
        "no_features": used & feats.isNull(),
        "wrong_length": used & feats.isNotNull() & (F.size(feats) != n_features),
        "non_finite": used & feats.isNotNull() & (F.size(feats) == n_features) & bad_value,
    }


def _check_features(table: DataFrame, found: dict[str, int], cond: dict[str, Column]) -> None:
    """The driver path's feature checks (``_stack_features``), from counts, with examples."""
    if found["no_features"]:
        raise DataError(
            f"{found['no_features']} labelled rows have no features although their error is "
            f"null (e.g. {_examples(table, cond['no_features'])}); re-run pool3 featurize "
            "for them."
        )
    if found["wrong_length"]:
        lengths = (
            table.filter(cond["wrong_length"])
            .select(F.size("features").alias("n"))
            .distinct()
            .orderBy("n")
            .limit(5)
        )
        raise DataError(
            f"{found['wrong_length']} rows have feature vectors of length "
            f"{[int(r['n']) for r in lengths.collect()]}, expected {found['n_features']} "
            f"(e.g. {_examples(table, cond['wrong_length'])}); re-featurize them with the "
            "same model."
        )
    if found["non_finite"]:
        raise DataError(
            f"{found['non_finite']} rows have NaN or infinite features (e.g. "
            f"{_examples(table, cond['non_finite'])}); re-featurize those images or remove "
            "them from the input."
        )


def _test_count(n: int, test_size: float) -> int:
    return min(n - 1, max(1, int(test_size * n + 0.5)))


def _split_column(used: DataFrame, params: TrainParams, per_class: dict[str, int]) -> Column:
    """Boolean ``is_test`` column; see the module docstring for the rule."""
    h = F.xxhash64(F.col("path"), F.lit(params.seed))
    if not params.stratify:
        return F.pmod(h, F.lit(_BUCKETS)) < F.lit(round(params.test_size * _BUCKETS))
    lonely = sorted(c for c, n in per_class.items() if n < 2)
    if lonely:
        shown = ", ".join(repr(c) for c in lonely[:_EXAMPLES]) + (
            ", ..." if len(lonely) > 3 else ""
        )
        raise DataError(
            f"classes with a single image cannot be stratified: {shown} ({len(lonely)} "
            "classes). Add images to them, drop the class, or use --no-stratify."
        )
    wanted = F.create_map(
        *[
            x
            for c, n in per_class.items()
            for x in (F.lit(c), F.lit(_test_count(n, params.test_size)).cast("long"))
        ]
    )
    # The last test image of each class in (hash, path) order: a few rows reach the driver.
    rank = F.row_number().over(Window.partitionBy("label").orderBy("_h", "path"))
    cuts = (
        used.select("label", "path", h.alias("_h"))
        .withColumn("_rank", rank)
        .filter(F.col("_rank") == wanted[F.col("label")])
        .select("label", "_h", "path")
        .collect()
    )
    cut_h = F.create_map(
        *[x for r in cuts for x in (F.lit(r["label"]), F.lit(r["_h"]).cast("long"))]
    )
    cut_path = F.create_map(*[x for r in cuts for x in (F.lit(r["label"]), F.lit(r["path"]))])
    label = F.col("label")
    return (h < cut_h[label]) | ((h == cut_h[label]) & (F.col("path") <= cut_path[label]))


def prepare_spark_data(
    table: DataFrame, params: TrainParams, *, n_features: int = FEATURE_DIM
) -> SparkData:
    """Check a feature table on Spark and split its usable rows.

    Parameters
    ----------
    table : DataFrame
        Columns ``path, label, features (array<float>), model, error``.
    params : TrainParams
        ``test_size``, ``seed`` and ``stratify`` are used.
    n_features : int, keyword-only
        Expected feature length (2048 for pool_3).

    Raises
    ------
    InputError
        A required column is missing.
    DataError
        No usable rows, mixed fingerprints, missing/short/NaN features, fewer than 2
        classes, a single-image class with ``stratify``, or an empty set after the split.
    """
    check_columns(table.columns)
    cond = _conditions(n_features)
    row = table.agg(
        F.count(F.lit(1)).alias("rows_total"), *[F.count_if(c).alias(k) for k, c in cond.items()]
    ).first()
    assert row is not None  # an aggregate without grouping has one row
    found = {k: int(v or 0) for k, v in row.asDict().items()} | {"n_features": n_features}
    counts = {
        "rows_total": found["rows_total"],
        "rows_error": found["error"],
        "rows_unlabelled": found["unlabelled"],
        "rows_used": found["used"],
    }
    if found["unlabelled"]:
        log.info(
            "skipping %d rows without a label (e.g. %s)",
            found["unlabelled"],
            _examples(table, cond["unlabelled"]),
        )
    log.info("feature table: %s", counts)
    if not counts["rows_used"]:
        raise DataError(
            f"no usable rows in the feature table ({counts}); featurize labelled images "
            "(labels come from the folder layout) before training."
        )
    used = table.filter(cond["used"])
    groups = used.groupBy("model", "label").count().collect()
    by_model: dict[str | None, int] = {}
    per_class: dict[str, int] = {}
    for g in groups:
        by_model[g["model"]] = by_model.get(g["model"], 0) + int(g["count"])
        per_class[str(g["label"])] = per_class.get(str(g["label"]), 0) + int(g["count"])
    fingerprint = single_fingerprint(by_model)
    _check_features(table, found, cond)
    if len(per_class) < 2:
        label, n = next(iter(per_class.items()))
        raise DataError(
            f"training needs at least 2 classes, got only {label!r} ({n} images); "
            "add images of other classes (one sub-folder per class)."
        )
    frame = used.select(
        "path", "label", "features", _split_column(used, params, per_class).alias("is_test")
    )
    sizes = frame.groupBy("label", "is_test").count().collect()
    train = {c: 0 for c in per_class} | {
        r["label"]: int(r["count"]) for r in sizes if not r["is_test"]
    }
    test = {c: 0 for c in per_class} | {r["label"]: int(r["count"]) for r in sizes if r["is_test"]}
    data = SparkData(frame, fingerprint, counts, train, test)
    if data.n_test == 0 or len(data.train_classes) < 2:
        raise DataError(
            f"cannot split {counts['rows_used']} images of {len(per_class)} classes with "
            f"test_size={params.test_size}, stratify={params.stratify}: {data.n_train} train "
            f"images of {len(data.train_classes)} classes, {data.n_test} test images. Add "
            "images, change --test-size, or use a stratified split."
        )
    unseen = sorted(set(per_class) - set(data.train_classes))
    if unseen:
        log.info("classes only in the test set (never predicted): %s", unseen)
    return data
