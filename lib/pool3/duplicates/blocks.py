"""Near duplicates over the float32 blocks the Spark solver cached: the LSH of :mod:`.arrays`.

The ``spark`` solver already holds every usable row (training and test) as cached blocks
(:class:`~pool3.training.newton.spark_passes.SparkPasses`). The near-duplicate search reads them
instead of joining the feature table on Spark (128 s at 20k rows before, as SQL joins):

1. one job sums the rows (the mean the signatures are centred on);
2. one job signs every row (:func:`~pool3.duplicates.arrays.sign_block`: 45 bytes of
   sign bits and three norms, with the row's id and content hash, ~90 bytes a row), more
   jobs if that exceeds what one job may ship to the driver;
3. the driver finds the candidate pairs (:func:`~pool3.duplicates.arrays.candidates`);
4. one job fetches the candidates' features for the exact cosine
   (:func:`~pool3.duplicates.arrays.check`);
5. exact duplicates are the rows whose content hashes the signing job returned repeat;
6. the paths, labels, ``sha256`` and splits of the rows in pairs come from the feature
   table, by id, in one small job; the exact pairs are then listed and counted as on the
   driver (:func:`pool3.duplicates.lsh.exact_pairs`).

The same hyperplanes, bands, bucket limit, estimate and check as the driver's search, so
it finds the same pairs (up to float32 rounding at the threshold).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pool3.duplicates.arrays import Signatures, candidates, check, hyperplanes, sign_block
from pool3.duplicates.lsh import BANDS, BITS, NearPairs, exact_pairs, near_result

log = logging.getLogger(__name__)

_PACKED = (BANDS * BITS + 7) // 8
_ROW_BYTES = 8 + 8 + _PACKED + 24

#: ``fn(X, ids, sha)`` on one batch of cached rows: one output row (named bytes), or None
RowsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, bytes] | None]


class CachedRows(Protocol):
    """Rows cached on the executors, as the ``spark`` solver holds them
    (:class:`pool3.training.newton.spark_passes.SparkPasses`): what this search needs of
    them, so that the search does not import training (training imports it)."""

    @property
    def n_features(self) -> int: ...

    def jobs_for(self, nbytes: float) -> int:
        """Jobs needed to ship ``nbytes`` to the driver within what one job may return."""
        ...

    def map_rows(self, fn: RowsFn, schema: pa.Schema) -> pa.Table:
        """``fn`` on every batch of cached rows, on the executors: its rows as one table."""
        ...


def _collect(passes: CachedRows, fn: Any, names: tuple[str, ...]) -> list[dict[str, bytes]]:
    schema = pa.schema([(n, pa.binary()) for n in names])
    table = passes.map_rows(fn, schema)
    return [
        dict(zip(names, row, strict=True))
        for row in zip(*(table.column(n).to_pylist() for n in names), strict=True)
    ]


def _mean(passes: CachedRows) -> np.ndarray:
    def total(X: np.ndarray, ids: np.ndarray, sha: np.ndarray) -> dict[str, bytes]:
        return {"s": X.sum(axis=0, dtype=np.float64).tobytes(), "n": np.int64(len(X)).tobytes()}

    rows = _collect(passes, total, ("s", "n"))
    s = np.sum([np.frombuffer(r["s"], np.float64) for r in rows], axis=0)
    n = sum(int(np.frombuffer(r["n"], np.int64)[0]) for r in rows)
    return (s / max(n, 1)).astype(np.float32)


def _signatures(
    passes: CachedRows, mean: np.ndarray, seed: int, n_rows: int
) -> tuple[Signatures, np.ndarray, np.ndarray]:
    """Every row's signature, with its id and content hash, in as many jobs as the ship
    limit needs (rows split by ``id mod jobs``)."""
    jobs = passes.jobs_for(n_rows * _ROW_BYTES)
    found: list[dict[str, bytes]] = []
    for part in range(jobs):

        def sign(X: np.ndarray, ids: np.ndarray, sha: np.ndarray, part: int = part) -> Any:
            keep = np.flatnonzero(ids % jobs == part) if jobs > 1 else slice(None)
            X, ids, sha = X[keep], ids[keep], sha[keep]
            if not len(ids):
                return None
            packed, norm, cnorm, dmean = sign_block(X, mean, hyperplanes(seed, len(mean)))
            return {"id": ids.tobytes(), "sha": sha.tobytes(), "packed": packed.tobytes(),
                    "norms": np.stack([norm, cnorm, dmean], axis=1).tobytes()}  # fmt: skip

        found += _collect(passes, sign, ("id", "sha", "packed", "norms"))
    ids = np.concatenate([np.frombuffer(r["id"], np.int64) for r in found])
    sha = np.concatenate([np.frombuffer(r["sha"], np.int64) for r in found])
    packed = np.concatenate([np.frombuffer(r["packed"], np.uint8) for r in found])
    norms = np.concatenate([np.frombuffer(r["norms"], np.float64) for r in found]).reshape(-1, 3)
    order = np.argsort(ids, kind="stable")  # the same rows in the same order, however split
    sig = Signatures(
        packed.reshape(-1, _PACKED)[order],
        norms[order, 0].copy(),
        norms[order, 1].copy(),
        norms[order, 2].copy(),
        mean,
    )
    return sig, ids[order], sha[order]


def _features(passes: CachedRows, wanted: np.ndarray) -> dict[int, np.ndarray]:
    """The float32 features of the rows whose ids are ``wanted`` (sorted), in as many jobs
    as the ship limit needs."""
    per_job = -(-len(wanted) // passes.jobs_for(len(wanted) * (4 * passes.n_features + 8)))
    out: dict[int, np.ndarray] = {}
    for start in range(0, len(wanted), per_job):
        chunk = wanted[start : start + per_job]

        def fetch(X: np.ndarray, ids: np.ndarray, sha: np.ndarray, chunk: Any = chunk) -> Any:
            at = np.searchsorted(chunk, ids).clip(0, len(chunk) - 1)
            keep = np.flatnonzero(chunk[at] == ids)
            if not len(keep):
                return None
            return {"id": ids[keep].tobytes(), "x": X[keep].tobytes()}

        for row in _collect(passes, fetch, ("id", "x")):
            ids = np.frombuffer(row["id"], np.int64)
            X = np.frombuffer(row["x"], np.float32).reshape(len(ids), passes.n_features)
            out.update(zip(ids.tolist(), X, strict=True))
    return out


def duplicates_blocks(
    passes: CachedRows, frame: DataFrame, threshold: float, seed: int, n_rows: int
) -> tuple[NearPairs, NearPairs]:
    """Exact and near pairs of every cached row (see the module docstring): ``(exact, near)``
    as :func:`pool3.duplicates.search` lists and counts them. Exact pairs are the rows of
    one content hash, found from the signatures' hashes; ``frame`` (``path, label, sha256,
    is_test``) names the rows of the pairs, in one small job."""
    sig, ids, sha = _signatures(passes, _mean(passes), seed, n_rows)
    a, b, unchecked = candidates(sig, threshold)
    rows = np.unique(np.concatenate([a, b]))
    fetched = _features(passes, ids[rows]) if len(rows) else {}

    def features(idx: np.ndarray) -> np.ndarray:
        return np.stack([fetched[int(i)] for i in ids[idx]]) if len(idx) else np.empty((0, 0))

    fa, fb, fc = check(a, b, features, sig.norm, lambda p, q: sha[p] == sha[q], threshold)
    order = np.argsort(sha, kind="stable")
    repeated = np.r_[False, sha[order][1:] == sha[order][:-1]]
    copies = order[repeated | np.r_[repeated[1:], False]]  # every member of a group of 2+
    named = np.unique(np.concatenate([fa, fb, copies]))
    keys = _keys(frame, ids[named])
    exact = exact_pairs(keys.loc[ids[copies]].reset_index(drop=True))
    where = {int(r): k for k, r in enumerate(named)}
    records = keys.loc[ids[named]].to_dict("records")
    log.debug(
        "duplicates on the cached blocks: %d near candidates, %d rows fetched, %d rows in "
        "groups of one content",
        len(a),
        len(rows),
        len(copies),
    )
    found = ((where[int(p)], where[int(q)], c) for p, q, c in zip(fa, fb, fc, strict=True))
    return exact, near_result(records, found, unchecked)


def _keys(frame: DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """``path, label, sha256, is_test`` of the rows of ``frame`` whose ids are ``ids``,
    indexed by id."""
    if not len(ids):
        return pd.DataFrame(columns=["path", "label", "sha256", "is_test"], index=pd.Index([]))
    wanted = frame.sparkSession.createDataFrame(pd.DataFrame({"id": ids}), "id long")
    named = frame.select(F.xxhash64("path").alias("id"), "path", "label", "sha256", "is_test")
    keys: pd.DataFrame = named.join(F.broadcast(wanted), "id").toPandas()
    return keys.set_index("id")
