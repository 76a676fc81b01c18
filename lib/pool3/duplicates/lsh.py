"""Near duplicates of a large feature table on Spark: random-hyperplane LSH (SimHash).

The search runs on the *centred* features. pool_3 features are non-negative, so raw vectors
all point one way (random pairs have cosine ~0.7) and their sign bits would say little;
centred, unrelated images are ~orthogonal. Each row gets ``BANDS`` keys of ``BITS`` bits;
rows sharing a key in some band are candidates. The Hamming distance of two whole
signatures estimates their centred angle; with three numbers per row (``|x|``,
``|x - mean|``, ``x . mean``) that gives their raw cosine (:func:`estimated_cosine`, taken
``ANGLE_SIGMAS`` standard errors high). Only candidates whose estimate reaches the threshold
are joined with their features and checked with the exact cosine (``>= threshold``).
Buckets larger than ``MAX_BUCKET`` (thousands of near-identical images, e.g. blank ones)
are not expanded, and counted.

Recall of the near search is a property of LSH. A pair whose centred features are at angle
``t`` shares a band with probability ``1 - (1 - (1 - t/180)^BITS)^BANDS``. On pool_3
features a pair at the 0.98 threshold is ~19 degrees apart once centred (found with
probability ~0.94), a re-encoded or resized copy (cosine ~0.995) ~10 degrees (~0.9999).
Features of low rank spread more when centred (scikit-learn's digits: 25 degrees at 0.98,
~0.74). Pairs above the threshold may be missed, pairs below it are never reported.
Candidate pairs grow with ``BANDS * n^2 / 2^(BITS+1)`` for unrelated images (about 40
million at a million rows), carried with their signatures only; tight clusters add more
(``python -m bench run duplicates``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

BANDS = 20
BITS = 18
#: standard errors of the angle estimate given to a candidate before its exact check
ANGLE_SIGMAS = 3.0
MAX_BUCKET = 1000
#: pairs listed in metrics.json at most (the counts cover all of them)
MAX_LISTED = 500

#: (pairs listed, counts, test paths with a copy in the training set)
NearPairs = tuple[list[dict[str, Any]], dict[str, int], set[str]]


def _split(is_test: Any) -> str:
    return "test" if bool(is_test) else "train"


def pair(a: Any, b: Any, kind: str, cosine: float) -> dict[str, Any]:
    return {
        "paths": [str(a["path"]), str(b["path"])],
        "kind": kind,
        "cosine": round(float(cosine), 6),
        "labels": [str(a["label"]), str(b["label"])],
        "splits": [_split(a["is_test"]), _split(b["is_test"])],
        "label_conflict": str(a["label"]) != str(b["label"]),
        "straddles": bool(a["is_test"]) != bool(b["is_test"]),
    }


def near_result(
    records: list[dict[str, Any]], found: Iterable[tuple[int, int, float]], unchecked: int
) -> NearPairs:
    """The pairs ``(a, b, cosine)`` of rows ``records[a]``, ``records[b]`` (``path, label,
    is_test``) as listed pairs (best first), counts and leaked test paths."""
    pairs = []
    for a, b, cosine in found:
        first, second = sorted((records[a], records[b]), key=lambda r: str(r["path"]))
        pairs.append(pair(first, second, "near", float(cosine)))
    pairs.sort(key=lambda p: (-p["cosine"], *p["paths"]))
    leaked = {p["paths"][p["splits"].index("test")] for p in pairs if p["straddles"]}
    counts = {
        "near_pairs": len(pairs),
        "near_label_conflicts": sum(p["label_conflict"] for p in pairs),
        "near_straddling": sum(p["straddles"] for p in pairs),
        "unchecked_rows": unchecked,
    }
    return pairs[:MAX_LISTED], counts, leaked


def exact_pairs(rows: pd.DataFrame) -> NearPairs:
    """Exact pairs (one content, ``sha256``) of ``rows`` (``path, label, sha256, is_test``) on
    the driver: star pairs of each group of 2+, counted, at most MAX_LISTED listed, and the
    test paths with a copy in the training set."""
    listed: list[dict[str, Any]] = []
    counts = {"exact_pairs": 0, "exact_label_conflicts": 0, "exact_straddling": 0}
    leaked: set[str] = set()
    named = rows[rows["sha256"].notna()]
    named = named[named["sha256"].duplicated(keep=False)]  # groups of 2+ only
    for _, group in sorted(named.groupby("sha256", sort=False), key=lambda kv: str(kv[0])):
        if len(group) < 2:
            continue
        members = group.sort_values(["path", "label", "is_test"]).to_dict("records")
        extra = len(members) - 1
        counts["exact_pairs"] += extra
        if group["label"].nunique() > 1:
            counts["exact_label_conflicts"] += extra
        if group["is_test"].nunique() > 1:
            counts["exact_straddling"] += extra
            leaked |= {str(m["path"]) for m in members if m["is_test"]}
        if len(listed) < MAX_LISTED:
            listed += [pair(members[0], m, "exact", 1.0) for m in members[1:]]
    return listed[:MAX_LISTED], counts, leaked


def _mean(frame: DataFrame, dim: int) -> np.ndarray:
    """Mean feature vector: per-partition sums in the workers, added on the driver."""

    def partial(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        total, n = np.zeros(dim, dtype=np.float64), 0
        for pdf in batches:
            for vector in pdf["features"]:
                total += vector
            n += len(pdf)
        yield pd.DataFrame({"n": [n], "total": [total.tolist()]})

    parts = frame.select("features").mapInPandas(partial, "n long, total array<double>").collect()
    n = sum(int(p["n"]) for p in parts)
    total = np.sum([np.asarray(p["total"]) for p in parts], axis=0)
    return (total / max(n, 1)).astype(np.float32)


def _signatures(frame: DataFrame, mean: np.ndarray, seed: int) -> DataFrame:
    """``path, keys array<long>`` (BANDS keys of BITS sign bits of the centred features),
    and the scalars that turn a centred angle into a raw cosine: ``norm`` = |x|,
    ``cnorm`` = |x - mean|, ``dmean`` = x . mean."""
    weights = (1 << np.arange(BITS, dtype=np.int64)).astype(np.int64)

    def sign(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # made in the worker from the seed (PCG64 is the same everywhere): a 2.6 MB matrix
        # that never travels with the task
        planes = np.random.default_rng(seed).standard_normal((len(mean), BANDS * BITS))
        planes = planes.astype(np.float32)
        for pdf in batches:
            X = np.empty((len(pdf), len(mean)), dtype=np.float32)
            for i, vector in enumerate(pdf["features"]):
                X[i] = vector
            centred = X - mean
            bits = (centred @ planes > 0).reshape(len(pdf), BANDS, BITS).astype(np.int64)
            yield pd.DataFrame(
                {
                    "path": pdf["path"],
                    "keys": list(bits @ weights),
                    "norm": np.linalg.norm(X, axis=1).astype(np.float64),
                    "cnorm": np.linalg.norm(centred, axis=1).astype(np.float64),
                    "dmean": (X @ mean).astype(np.float64),
                }
            )

    schema = "path string, keys array<long>, norm double, cnorm double, dmean double"
    return frame.select("path", "features").mapInPandas(sign, schema)


def estimated_cosine(hamming: Column, a: str, b: str, mean_sq: float) -> Column:
    """An upper estimate of the raw cosine of two rows from their signatures' Hamming
    distance: the centred angle ``pi * h / N`` less ``ANGLE_SIGMAS`` standard errors, then
    ``a.b = |a-m||b-m| cos + a.m + b.m - |m|^2`` over ``|a| |b|``."""
    n = BANDS * BITS
    p = hamming / F.lit(float(n))
    sigma = F.sqrt(p * (F.lit(1.0) - p) / F.lit(float(n))) * F.lit(math.pi)
    angle = F.greatest(F.lit(0.0), p * F.lit(math.pi) - F.lit(ANGLE_SIGMAS) * sigma)
    dot = (
        F.col(f"cnorm_{a}") * F.col(f"cnorm_{b}") * F.cos(angle)
        + F.col(f"dmean_{a}")
        + F.col(f"dmean_{b}")
        - F.lit(mean_sq)
    )
    return dot / (F.col(f"norm_{a}") * F.col(f"norm_{b}"))


_PAIR_SCHEMA = (
    "path_a string, label_a string, is_test_a boolean, "
    "path_b string, label_b string, is_test_b boolean, cosine double"
)


def _cosines(threshold: float) -> Any:
    """The exact cosine of each joined pair, in numpy (a row-wise einsum per Arrow batch);
    the pairs at ``threshold`` or above, without their features."""

    def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                continue
            a = np.stack(pdf["features_a"].to_numpy()).astype(np.float64)
            b = np.stack(pdf["features_b"].to_numpy()).astype(np.float64)
            norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
            cosine = np.einsum("ij,ij->i", a, b) / norms
            keep = pdf[cosine >= threshold].drop(columns=["features_a", "features_b"])
            yield keep.assign(cosine=cosine[cosine >= threshold])

    return check


def lsh_pairs(frame: DataFrame, threshold: float, seed: int, dim: int) -> NearPairs:
    """Near pairs (``kind="near"``, cosine >= ``threshold``) of rows ``path, label,
    sha256, features, is_test``, found by LSH; see the module docstring."""
    mean = _mean(frame, dim)
    sig = _signatures(frame, mean, seed).cache()
    try:
        cand, unchecked = _candidates(sig)
        close = _close(cand, sig, float(np.dot(mean.astype(np.float64), mean)), threshold)
        pairs = _checked(frame, close, threshold).cache()
        try:
            totals, got, leaked = _summary(pairs)
        finally:
            pairs.unpersist()
    finally:
        sig.unpersist()

    def side(r: Any, s: str) -> dict[str, Any]:
        return {"path": r[f"path_{s}"], "label": r[f"label_{s}"], "is_test": r[f"is_test_{s}"]}

    listed = [pair(side(r, "a"), side(r, "b"), "near", r["cosine"]) for r in got]
    counts = {
        "near_pairs": int(totals["pairs"]) if totals else 0,
        "near_label_conflicts": int(totals["conflicts"]) if totals else 0,
        "near_straddling": int(totals["straddling"]) if totals else 0,
        "unchecked_rows": int(unchecked[0]) if unchecked else 0,
    }
    return listed, counts, leaked


def _candidates(sig: DataFrame) -> tuple[DataFrame, Any]:
    """The candidate pairs ``pa < pb`` (paths sharing a bucket of some band), and the rows
    in buckets larger than ``MAX_BUCKET``, not expanded (one job counts them)."""
    keyed = sig.select("path", F.posexplode("keys").alias("band", "key"))
    sizes = keyed.groupBy("band", "key").agg(F.count(F.lit(1)).alias("n"))
    oversize = sizes.filter(F.col("n") > MAX_BUCKET)
    unchecked = oversize.agg(F.coalesce(F.sum("n"), F.lit(0))).first()
    kept = keyed.join(sizes.filter((F.col("n") > 1) & (F.col("n") <= MAX_BUCKET)), ["band", "key"])
    a, b = kept.alias("a"), kept.alias("b")
    cand = (
        a.join(b, (F.col("a.band") == F.col("b.band")) & (F.col("a.key") == F.col("b.key")))
        .filter(F.col("a.path") < F.col("b.path"))
        .select(F.col("a.path").alias("pa"), F.col("b.path").alias("pb"))
        .distinct()
    )
    return cand, unchecked


def _close(cand: DataFrame, sig: DataFrame, mean_sq: float, threshold: float) -> DataFrame:
    """The candidates whose cosine estimated from their signatures reaches ``threshold``."""
    hamming = F.aggregate(
        F.zip_with("keys_a", "keys_b", lambda x, y: F.bit_count(x.bitwiseXOR(y))),
        F.lit(0),
        lambda s, v: s + v,
    )
    sides = {s: sig.select(*[F.col(c).alias(f"{c}_{s}") for c in sig.columns]) for s in "ab"}
    return (
        cand.join(sides["a"], cand["pa"] == sides["a"]["path_a"])
        .join(sides["b"], cand["pb"] == sides["b"]["path_b"])
        .filter(estimated_cosine(hamming, "a", "b", mean_sq) >= threshold)
        .select("pa", "pb")
    )


def _checked(frame: DataFrame, close: DataFrame, threshold: float) -> DataFrame:
    """The pairs of ``close`` of two different contents whose exact cosine reaches
    ``threshold`` (:data:`_PAIR_SCHEMA`)."""
    rows = frame.select("path", "label", "is_test", "sha256", "features")
    left = rows.select(*[F.col(c).alias(f"{c}_a") for c in rows.columns])
    right = rows.select(*[F.col(c).alias(f"{c}_b") for c in rows.columns])
    joined = (
        close.join(left, close["pa"] == left["path_a"])
        .join(right, close["pb"] == right["path_b"])
        .filter(~F.coalesce(F.col("sha256_a") == F.col("sha256_b"), F.lit(False)))
        .select(*[f"{c}_{s}" for s in "ab" for c in ("path", "label", "is_test", "features")])
    )
    return joined.mapInPandas(_cosines(threshold), _PAIR_SCHEMA)


def _summary(pairs: DataFrame) -> tuple[Any, list[Any], set[str]]:
    """The pairs' totals (pairs, label conflicts, straddling the split), the first
    ``MAX_LISTED`` by cosine, and the test images with a near copy in the training set."""
    totals = pairs.agg(
        F.count(F.lit(1)).alias("pairs"),
        F.count_if(F.col("label_a") != F.col("label_b")).alias("conflicts"),
        F.count_if(F.col("is_test_a") != F.col("is_test_b")).alias("straddling"),
    ).first()
    got = pairs.orderBy(F.desc("cosine"), "path_a", "path_b").limit(MAX_LISTED).collect()
    leaked_rows = pairs.filter(F.col("is_test_a") != F.col("is_test_b")).select(
        F.when(F.col("is_test_a"), F.col("path_a")).otherwise(F.col("path_b")).alias("p")
    )
    return totals, got, {str(r["p"]) for r in leaked_rows.distinct().collect()}
