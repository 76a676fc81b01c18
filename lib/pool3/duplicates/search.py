"""Duplicate images in a feature table: exact (same ``sha256``) and near (cosine of features).

Real collections hold the same picture twice, under two names and sometimes under two
labels. A copy in the training set and one in the test set inflate the test accuracy; two
labels on one picture are a label error. Both are found from what the feature table
already holds, without an all-pairs product at scale:

- **exact**: rows grouped by ``sha256`` on Spark; each group of ``n`` gives ``n - 1`` pairs
  (its first path, in path order, with each other one).
- **near**: up to ``EXACT_MAX_ROWS`` rows, the exact all-pairs cosine on the driver (blocks
  of a matrix product: every pair above the threshold, in a second or two); above it,
  random-hyperplane LSH (:mod:`pool3.duplicates.lsh`), which stays cheap at a million
  rows and may miss pairs just above the threshold, never reporting one below it: on the
  driver's float32 array when a driver solver has it (:mod:`pool3.duplicates.arrays`),
  else on Spark.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.duplicates.arrays import near_pairs_arrays
from pool3.duplicates.blocks import CachedRows, duplicates_blocks
from pool3.duplicates.lsh import MAX_LISTED, NearPairs, exact_pairs, lsh_pairs, near_result, pair

log = logging.getLogger(__name__)

#: near duplicates of tables up to this many rows are searched exactly, on the driver
EXACT_MAX_ROWS = 5000
#: the spark solver's cached blocks are searched with the driver's candidate pairs up to
#: this many rows (they grow with n^2: ~40 million at 1M rows); beyond, the LSH joins on Spark
BLOCKS_MAX_ROWS = 2_000_000
_BLOCK = 1024


@dataclass(frozen=True)
class Duplicates:
    """Duplicate pairs found in a training table.

    ``pairs``: up to :data:`MAX_LISTED` dicts, exact ones first, then near ones by cosine:
    ``paths`` (two), ``kind`` (``exact``/``near``), ``cosine``, ``labels`` (two),
    ``splits`` (two of ``train``/``test``), ``label_conflict`` and ``straddles`` (bools).
    ``counts``: totals over all pairs (``exact_pairs``, ``near_pairs``, ``label_conflicts``,
    ``straddling``, ``unchecked_rows``: rows in LSH buckets too large to expand).
    ``method``: how near duplicates were searched, ``exact`` (all pairs) or ``lsh``.
    ``leaked_test``: test paths with a copy (exact or near) in the training set.
    """

    pairs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    leaked_test: frozenset[str] = frozenset()
    threshold: float = 0.98
    method: str = "exact"


def _exact(frame: DataFrame) -> tuple[list[dict[str, Any]], dict[str, int], set[str]]:
    """Star pairs of every ``sha256`` group: counted on Spark, at most MAX_LISTED collected."""
    member = F.struct("path", "label", "is_test")
    groups = (
        frame.filter(F.col("sha256").isNotNull())
        .groupBy("sha256")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sort_array(F.collect_list(member)).alias("rows"),
            F.countDistinct("label").alias("labels"),
            F.countDistinct("is_test").alias("splits"),
        )
        .filter(F.col("n") > 1)
        .cache()
    )
    try:
        totals = groups.agg(
            F.sum(F.col("n") - 1).alias("pairs"),
            F.sum(F.when(F.col("labels") > 1, F.col("n") - 1).otherwise(0)).alias("conflicts"),
            F.sum(F.when(F.col("splits") > 1, F.col("n") - 1).otherwise(0)).alias("straddling"),
        ).first()
        listed: list[dict[str, Any]] = []
        for g in groups.orderBy("sha256").limit(MAX_LISTED).collect():
            rows = g["rows"]
            listed += [pair(rows[0], other, "exact", 1.0) for other in rows[1:]]
        # test images whose group also has a training image
        copies = groups.filter(F.col("splits") > 1).select(F.explode("rows").alias("r"))
        test_copies = copies.filter(F.col("r.is_test")).select(F.col("r.path").alias("p"))
        leaked = {str(r["p"]) for r in test_copies.collect()}
    finally:
        groups.unpersist()
    counts = {
        "exact_pairs": int(totals["pairs"] or 0) if totals else 0,
        "exact_label_conflicts": int(totals["conflicts"] or 0) if totals else 0,
        "exact_straddling": int(totals["straddling"] or 0) if totals else 0,
    }
    return listed[:MAX_LISTED], counts, leaked


def _near_local(X: np.ndarray, rows: pd.DataFrame, threshold: float) -> NearPairs:
    """Every pair of different files with cosine >= ``threshold``: the upper triangle of
    the cosine matrix, ``_BLOCK`` rows at a time (one block of it in memory); ``X`` is
    not changed."""
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    sha = rows["sha256"].to_numpy()
    found: list[tuple[float, int, int]] = []
    for start in range(0, len(X), _BLOCK):
        block = X[start : start + _BLOCK] @ X.T
        for i, j in zip(*np.nonzero(block >= threshold), strict=True):
            a = start + int(i)
            if int(j) > a and not (sha[a] is not None and sha[a] == sha[j]):
                found.append((float(block[i, j]), a, int(j)))
    records = rows[["path", "label", "is_test"]].to_dict("records")
    return near_result(records, ((a, b, c) for c, a, b in found), 0)


def _on_spark(frame: DataFrame, threshold: float, seed: int, dim: int) -> tuple[Any, ...]:
    """Exact and near pairs of ``frame``: small tables collected, large ones on Spark."""
    # read many times below: once from its source (Parquet, split), then from memory
    frame = frame.select("path", "label", "sha256", "features", "is_test").persist()
    try:
        if frame.count() <= EXACT_MAX_ROWS:
            method = "exact"
            rows: pd.DataFrame = frame.toPandas()
            X = np.empty((len(rows), dim), dtype=np.float32)
            for i, vector in enumerate(rows["features"]):
                X[i] = vector
            pairs, counts, leaked = exact_pairs(rows)
            near, near_counts, near_leaked = _near_local(X, rows, threshold)
        else:
            method = "lsh"
            pairs, counts, leaked = _exact(frame)
            near, near_counts, near_leaked = lsh_pairs(frame, threshold, seed, dim)
    finally:
        frame.unpersist()
    return pairs, counts, leaked, near, near_counts, near_leaked, method


class ArrayRows(Protocol):
    """The usable rows as the driver's float32 array, as a driver solver read them
    (:class:`pool3.training.table.data.Split`)."""

    @property
    def X(self) -> np.ndarray: ...
    @property
    def y(self) -> np.ndarray: ...
    @property
    def paths(self) -> np.ndarray: ...
    @property
    def sha256(self) -> np.ndarray | None: ...
    @property
    def is_test(self) -> np.ndarray: ...


def find_duplicates(
    frame: DataFrame,
    *,
    threshold: float = 0.98,
    seed: int = 42,
    dim: int = 2048,
    rows: ArrayRows | None = None,
    blocks: CachedRows | None = None,
    n_rows: int = 0,
) -> Duplicates:
    """Exact and near duplicate pairs of a prepared training table.

    Parameters
    ----------
    frame : DataFrame
        ``path, label, sha256, features, is_test``: the usable rows with their split
        (:attr:`pool3.training.table.rules.TrainingTable.frame`).
    threshold : float, keyword-only
        Cosine of the raw features from which two different files are near duplicates
        (``report.duplicate_cosine``).
    seed : int, keyword-only
        Seeds the LSH hyperplanes (the same table and seed give the same pairs).

    rows : ArrayRows, keyword-only, optional
        The same rows as the driver's float32 array (a driver solver read them): searched
        there (:mod:`pool3.duplicates.arrays`), without a Spark job.
    blocks, n_rows : CachedRows, int, keyword-only, optional
        The same ``n_rows`` rows cached as float32 blocks by the ``spark`` solver: searched
        there (:mod:`pool3.duplicates.blocks`) up to ``BLOCKS_MAX_ROWS`` rows.

    Up to ``EXACT_MAX_ROWS`` rows are compared on the driver, every pair; larger tables by
    LSH for near pairs, on the driver's array when ``rows`` is given, else on Spark
    (``sha256`` groups, joins).
    """
    started = time.monotonic()
    if rows is not None:
        method = "exact" if len(rows.y) <= EXACT_MAX_ROWS else "lsh"
        keys = pd.DataFrame(
            {"path": rows.paths, "label": rows.y, "sha256": rows.sha256, "is_test": rows.is_test}
        )
        pairs, counts, leaked = exact_pairs(keys)
        if method == "exact":
            near, near_counts, near_leaked = _near_local(rows.X, keys, threshold)
        else:
            records = keys[["path", "label", "is_test"]].to_dict("records")
            near, near_counts, near_leaked = near_pairs_arrays(
                rows.X, records, keys["sha256"].to_numpy(), threshold, seed
            )
    elif blocks is not None and n_rows <= BLOCKS_MAX_ROWS:
        method = "lsh"
        found = duplicates_blocks(blocks, frame, threshold, seed, n_rows)
        (pairs, counts, leaked), (near, near_counts, near_leaked) = found
    else:
        pairs, counts, leaked, near, near_counts, near_leaked, method = _on_spark(
            frame, threshold, seed, dim
        )
    pairs += near
    counts |= near_counts
    leaked |= near_leaked
    counts["pairs"] = counts.get("exact_pairs", 0) + counts.get("near_pairs", 0)
    counts["label_conflicts"] = counts["exact_label_conflicts"] + counts.get(
        "near_label_conflicts", 0
    )
    counts["straddling"] = counts["exact_straddling"] + counts.get("near_straddling", 0)
    counts["leaked_test_images"] = len(leaked)
    log.info(
        "duplicates: %d exact and %d near pairs (cosine >= %.3f, %s search on %s), %d with "
        "conflicting labels, %d across train and test, in %.1f s",
        counts["exact_pairs"],
        counts.get("near_pairs", 0),
        threshold,
        method,
        "the driver's array" if rows is not None else "the cached blocks" if blocks else "Spark",
        counts["label_conflicts"],
        counts["straddling"],
        time.monotonic() - started,
    )
    return Duplicates(pairs[:MAX_LISTED], counts, frozenset(leaked), threshold, method)
