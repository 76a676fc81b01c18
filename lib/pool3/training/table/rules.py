"""The rules a feature table must meet to train on, for every solver, checked on Spark.

The feature table is what ``pool3 featurize`` wrote (``path, label, sha256, features,
model, error``). :func:`prepare` counts the usable rows, refuses what cannot give a valid
classifier (one :class:`~pool3.errors.DataError` message per rule, with example paths) and
marks the held-out split (:mod:`pool3.training.table.split`). Only counts, the class list and a
few example paths reach the driver; the driver solvers then collect the prepared rows
(:mod:`pool3.training.table.data`), Spark MLlib fits on them where they are
(:mod:`pool3.training.solvers.spark_solver`).

Size (over ~300 lines): the rules a training table must meet and their messages, one per
rule, in one place; the split and the collection live in :mod:`.split` and :mod:`.data`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pool3.config import TrainParams
from pool3.errors import DataError, InputError
from pool3.model.inception2015 import FEATURE_DIM
from pool3.training.table.split import assign_split, describe, split_counts

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "label", "features", "model", "error")
_EXAMPLES = 3


@dataclass(frozen=True, eq=False)
class TrainingTable:
    """Usable rows of a feature table with their split, and what the driver knows of them.

    Attributes
    ----------
    frame : DataFrame
        ``path, label, sha256, features, is_test`` (boolean), usable rows only.
    fingerprint : str
        The single feature-model fingerprint of the usable rows.
    counts : dict
        ``rows_total``, ``rows_error``, ``rows_unlabelled``, ``rows_used``.
    train_counts, test_counts : dict of str to int
        Images per class in each set (every class of the data appears in both, maybe as 0).
    split : dict
        How the split was made (:func:`pool3.training.table.split.describe`).
    precision : str or None
        The single ``precision`` of the usable rows (None: written before pool3 recorded it).
    source : DataFrame or None
        The feature table as read (its Parquet parts are what the driver solvers read).
    n_features : int
        The length of every usable row's feature vector.
    """

    frame: DataFrame
    fingerprint: str
    counts: dict[str, int]
    train_counts: dict[str, int]
    test_counts: dict[str, int]
    split: dict[str, Any]
    precision: str | None = None
    source: DataFrame | None = None
    n_features: int = FEATURE_DIM

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


#: rows per batch of Spark's vectorized Parquet reader while training reads the features:
#: its default (4096) makes column vectors of 4096 x 2048 floats (33 MB, twice with their
#: nulls, grown by doubling), beside 128 MB row groups, per task: a 1 GB heap (Spark's
#: default driver memory, local mode's whole heap) ran out of it at 200k rows, now and then
READER_BATCH_ROWS = 256


@contextmanager
def reader_batch(spark: SparkSession) -> Iterator[None]:
    """``spark.sql.parquet.columnarReaderBatchSize`` at :data:`READER_BATCH_ROWS` (unless
    set lower) while the block runs, then as it was."""
    key = "spark.sql.parquet.columnarReaderBatchSize"
    before = spark.conf.get(key, None)
    if before is not None and int(before) <= READER_BATCH_ROWS:
        yield
        return
    spark.conf.set(key, str(READER_BATCH_ROWS))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def check_columns(columns: Sequence[str]) -> None:
    """InputError unless a feature table's ``columns`` hold :data:`REQUIRED_COLUMNS`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(
            f"feature table lacks columns {missing}; expected {list(REQUIRED_COLUMNS)}, "
            f"got {list(columns)}. Point training at the output of pool3 featurize."
        )


def single_fingerprint(counts: Mapping[str | None, int]) -> str:
    """The one feature-model fingerprint of ``{fingerprint or None: rows}``, or DataError."""
    named = {("<missing>" if fp is None else str(fp)): int(n) for fp, n in counts.items()}
    if len(named) > 1 or "<missing>" in named:
        listed = ", ".join(
            f"{fp!r}: {n} rows" for fp, n in sorted(named.items(), key=lambda kv: -kv[1])
        )
        raise DataError(
            f"feature table mixes feature-model fingerprints ({listed}); a classifier needs "
            "features from exactly one model. Re-featurize all images with one model "
            "(into a fresh output, or with output mode 'overwrite') and train again."
        )
    return next(iter(named))


def single_precision(counts: Mapping[str | None, int]) -> str | None:
    """The one ``precision`` of ``{precision or None: rows}`` (None: not recorded), or DataError.

    float32, bfloat16 and int8 features of the same weights differ (cosine ~0.999 and
    ~0.99), so a classifier is trained on one precision only.
    """
    if len(counts) <= 1:
        return next(iter(counts), None)
    listed = ", ".join(
        f"{'<not recorded>' if p is None else p}: {n} rows"
        for p, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    raise DataError(
        f"feature table mixes feature precisions ({listed}); a classifier needs features "
        "computed one way. Re-featurize all images with one precision (pool3 featurize "
        "--mode overwrite --precision float32|bfloat16|int8) and train again."
    )


def _examples(table: DataFrame, condition: Column) -> str:
    rows = table.filter(condition).select("path").orderBy("path").limit(_EXAMPLES + 1)
    paths = [str(r["path"]) for r in rows.collect()]
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


def _count(table: DataFrame, cond: dict[str, Column], n_features: int) -> dict[str, int]:
    row = table.agg(
        F.count(F.lit(1)).alias("rows_total"), *[F.count_if(c).alias(k) for k, c in cond.items()]
    ).first()
    assert row is not None  # an aggregate without grouping has one row
    return {k: int(v or 0) for k, v in row.asDict().items()} | {"n_features": n_features}


def prepare(
    table: DataFrame, params: TrainParams, *, n_features: int = FEATURE_DIM
) -> TrainingTable:
    """Check a feature table and split its usable rows (the same for every solver).

    Parameters
    ----------
    table : DataFrame
        Columns ``path, label, features (array<float>), model, error``, and ``sha256``
        (the split's key; the path stands in for it where it is missing).
    params : TrainParams
        ``split``, ``test_size``, ``seed`` and ``stratify`` are used.
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
    with reader_batch(table.sparkSession):
        return _prepare(table, params, n_features)


def _prepare(table: DataFrame, params: TrainParams, n_features: int) -> TrainingTable:
    source = table
    for optional in ("sha256", "precision"):  # absent in tables of older versions
        if optional not in table.columns:
            table = table.withColumn(optional, F.lit(None).cast("string"))
    cond = _conditions(n_features)
    found = _count(table, cond, n_features)
    counts = _usable(table, cond, found)
    used = table.filter(cond["used"])
    fingerprint, precision, per_class = _groups(used)
    _check_features(table, found, cond)
    if len(per_class) < 2:
        label, n = next(iter(per_class.items()))
        raise DataError(
            f"training needs at least 2 classes, got only {label!r} ({n} images); "
            "add images of other classes (one sub-folder per class)."
        )
    frame = assign_split(used, params, per_class).select(
        "path", "label", "sha256", "features", "is_test"
    )
    train, test = split_counts(frame, per_class, params, counts["rows_used"])
    return TrainingTable(
        frame, fingerprint, counts, train, test, describe(params), precision, source, n_features
    )


def _usable(table: DataFrame, cond: dict[str, Column], found: dict[str, int]) -> dict[str, int]:
    """The table's row counts (total, errors, unlabelled, used), logged; refuses a table
    without a usable row."""
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
    log.info(
        "feature table: %d rows, %d usable (%d errors, %d unlabelled)",
        counts["rows_total"],
        counts["rows_used"],
        counts["rows_error"],
        counts["rows_unlabelled"],
    )
    if not counts["rows_used"]:
        raise DataError(
            f"no usable rows in the feature table ({counts}); featurize labelled images "
            "(labels come from the folder layout) before training."
        )
    return counts


def _groups(used: DataFrame) -> tuple[str, str | None, dict[str, int]]:
    """The usable rows' one model fingerprint and one precision (refusing a mix), and the
    images per class, from one grouping job."""
    by_model: dict[str | None, int] = {}
    by_precision: dict[str | None, int] = {}
    per_class: dict[str, int] = {}
    for g in used.groupBy("model", "precision", "label").count().collect():
        by_model[g["model"]] = by_model.get(g["model"], 0) + int(g["count"])
        by_precision[g["precision"]] = by_precision.get(g["precision"], 0) + int(g["count"])
        per_class[str(g["label"])] = per_class.get(str(g["label"]), 0) + int(g["count"])
    return single_fingerprint(by_model), single_precision(by_precision), per_class
