"""The held-out split: one rule, computed on Spark, whatever solver fits afterwards.

Both the driver solvers (liblinear, SGD) and Spark MLlib train on the rows that
:func:`assign_split` marks ``is_test = false`` and are evaluated on the others, so
``train.solver = "auto"`` switching solver when the table grows never changes the test
set. Two methods (``train.split``):

``"content"`` (default)
    Each image's key is its content hash (``sha256``; the path where it is missing) and
    ``h = first 60 bits of sha256(f"{seed}:{key}")``. With ``stratify`` the test set of a
    class of ``n`` images is the images whose ``h`` is at most the ``k``-th smallest ``h``
    of the class, ``k = round(test_size * n)`` clamped to ``[1, n - 1]``; without it, an
    image is in the test set when ``h < test_size * 2**60``. The split depends only on the
    images themselves: not on listing order or partitioning, and an image keeps its side
    when others are added (unless it sits at a class's cut). Exact duplicates share ``h``,
    and a content in the test set under one label is in it under every label, so no image
    is ever both trained on and tested.
``"sklearn"``
    The tutorial's ``train_test_split(test_size=test_size, random_state=seed)`` (stratified
    by label with ``stratify``) over the usable rows sorted by path; their paths and labels
    are collected to the driver for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pool3.config import TrainParams
from pool3.errors import DataError

log = logging.getLogger(__name__)

_HASH_BITS = 60  # 15 hex digits: a non-negative long
_EXAMPLES = 3


def describe(params: TrainParams) -> dict[str, Any]:
    """The split as recorded in the classifier's meta, ``metrics.json`` and the report."""
    if params.split == "content":
        rule = "sha256(seed:content sha256), " + (
            "lowest per class" if params.stratify else f"below {params.test_size} of 2^60"
        )
    else:
        rule = "sklearn train_test_split over rows sorted by path"
    return {
        "method": params.split,
        "test_size": params.test_size,
        "stratify": params.stratify,
        "seed": params.seed,
        "rule": rule,
    }


def content_hash(seed: int) -> Column:
    """``h``: the first 60 bits of ``sha256(f"{seed}:{sha256 or path}")`` as a long."""
    key = F.coalesce(F.col("sha256"), F.col("path"))
    digest = F.sha2(F.concat(F.lit(f"{seed}:"), key), 256)
    return F.conv(F.substring(digest, 1, _HASH_BITS // 4), 16, 10).cast("long")


def test_count(n: int, test_size: float) -> int:
    """Test images wanted of a class of ``n``: ``round(test_size * n)`` in ``[1, n - 1]``."""
    return min(n - 1, max(1, int(test_size * n + 0.5)))


def _check_stratifiable(per_class: Mapping[str, int]) -> None:
    lonely = sorted(c for c, n in per_class.items() if n < 2)
    if lonely:
        shown = ", ".join(repr(c) for c in lonely[:_EXAMPLES])
        raise DataError(
            f"classes with a single image cannot be stratified: {shown}"
            f"{', ...' if len(lonely) > _EXAMPLES else ''} ({len(lonely)} classes). Add images "
            "to them, drop the class, or use --no-stratify."
        )


def _content_split(used: DataFrame, params: TrainParams, per_class: Mapping[str, int]) -> DataFrame:
    h = content_hash(params.seed)
    keyed = used.withColumn("_h", h)
    if not params.stratify:
        cut = F.lit(int(params.test_size * 2**_HASH_BITS)).cast("long")
        return keyed.withColumn("is_test", F.col("_h") < cut).drop("_h")
    wanted = F.create_map(
        *[
            x
            for c, n in per_class.items()
            for x in (F.lit(c), F.lit(test_count(n, params.test_size)).cast("long"))
        ]
    )
    # Each class's cut: the k-th smallest hash; a few rows (one per class) reach the driver.
    rank = F.row_number().over(Window.partitionBy("label").orderBy("_h", "path"))
    cuts = (
        keyed.select("label", "path", "_h")
        .withColumn("_rank", rank)
        .filter(F.col("_rank") == wanted[F.col("label")])
        .select("label", "_h")
        .collect()
    )
    cut_h = F.create_map(
        *[x for r in cuts for x in (F.lit(r["label"]), F.lit(r["_h"]).cast("long"))]
    )
    in_test = (F.col("_h") <= cut_h[F.col("label")]).cast("int")
    # A content tested under one label is tested under all: duplicates never straddle.
    anywhere = F.max(in_test).over(Window.partitionBy("_h")) == 1
    return keyed.withColumn("is_test", anywhere).drop("_h")


def _sklearn_split(used: DataFrame, params: TrainParams) -> DataFrame:
    from sklearn.model_selection import train_test_split

    keys: pd.DataFrame = used.select("path", "label").orderBy("path").toPandas()
    index = np.arange(len(keys))
    labels = keys["label"].to_numpy()
    try:
        _, test_idx = train_test_split(
            index,
            test_size=params.test_size,
            random_state=params.seed,
            stratify=labels if params.stratify else None,
        )
    except ValueError as err:
        raise DataError(
            f"cannot split {len(index)} images of {len(set(labels))} classes with "
            f"test_size={params.test_size}: {err}. Add images, raise or lower --test-size, "
            "or use --no-stratify."
        ) from err
    test = pd.DataFrame({"path": keys["path"].to_numpy()[np.sort(test_idx)], "_test": True})
    marks = used.sparkSession.createDataFrame(test, "path string, _test boolean")
    return (
        used.join(F.broadcast(marks), "path", "left")
        .withColumn("is_test", F.coalesce(F.col("_test"), F.lit(False)))
        .drop("_test")
    )


def assign_split(used: DataFrame, params: TrainParams, per_class: Mapping[str, int]) -> DataFrame:
    """``used`` (usable rows: ``path, label, sha256, ...``) with a boolean ``is_test`` column.

    Raises
    ------
    DataError
        A class of a single image with ``stratify``, or a split scikit-learn refuses.
    """
    if params.stratify:
        _check_stratifiable(per_class)
    if params.split == "content":
        return _content_split(used, params, per_class)
    return _sklearn_split(used, params)


def split_counts(
    frame: DataFrame, per_class: Mapping[str, int], params: TrainParams, n_used: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Images per class in the training and the test set of the split ``frame``, logged;
    refuses a split without a test image or with fewer than 2 training classes."""
    sizes = frame.groupBy("label", "is_test").count().collect()
    train = {c: 0 for c in per_class} | {
        r["label"]: int(r["count"]) for r in sizes if not r["is_test"]
    }
    test = {c: 0 for c in per_class} | {r["label"]: int(r["count"]) for r in sizes if r["is_test"]}
    n_train, n_test = sum(train.values()), sum(test.values())
    train_classes = sorted(c for c, n in train.items() if n > 0)
    if n_test == 0 or len(train_classes) < 2:
        raise DataError(
            f"cannot split {n_used} images of {len(per_class)} classes with "
            f"test_size={params.test_size}, stratify={params.stratify}: {n_train} train "
            f"images of {len(train_classes)} classes, {n_test} test images. Add "
            "images, change --test-size, or use a stratified split."
        )
    log.info(
        "split (%s): %d train / %d test images, %d classes, stratify=%s, seed=%d",
        describe(params)["rule"],
        n_train,
        n_test,
        len(per_class),
        params.stratify,
        params.seed,
    )
    unseen = sorted(set(per_class) - set(train_classes))
    if unseen:
        log.info("classes only in the test set (never predicted): %s", unseen)
    return train, test
