"""Near-duplicate search of ``pool3 train``: LSH on Spark against the exact all-pairs
product, on pool_3-like rows resampled around real features (``features``; synthetic
parts without it) with ``planted`` copies at known cosines (0.97-1.0), in ``local[2]``.

Per size of ``rows``, both searches alternated (the exact one only up to ``exact_max``
rows): ``seconds``, ``near_pairs``, recall of the planted pairs per band of true cosine
(``recall_LO-HI``; pairs below the 0.98 threshold must not be found) and ``below`` (pairs
reported that the exact search does not have: always 0, candidates are checked exactly).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.harness.core import Figures, FuncVariant, Scenario, alternate, medians
from bench.harness.tables import real_parts, synthetic_parts

BANDS = ((0.97, 0.98), (0.98, 0.985), (0.985, 0.99), (0.99, 0.995), (0.995, 1.0001))


def perturbed(x: np.ndarray, target: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A non-negative copy of ``x`` at cosine ~``target`` (bisection on the noise scale)."""
    noise = rng.standard_normal(x.shape).astype(np.float32) * x.std()
    lo, hi = 0.0, 2.0
    for _ in range(30):
        y = np.maximum(x + (t := (lo + hi) / 2) * noise, 0)
        c = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
        lo, hi = (t, hi) if c > target else (lo, t)
    return y, c


def table(n: int, planted: int, base: np.ndarray, seed: int) -> tuple[pa.Table, dict]:
    rng = np.random.default_rng(seed)
    sd = base.std(axis=0, keepdims=True)
    picks = rng.integers(0, len(base), n - planted)
    X = np.maximum(base[picks] + 0.6 * sd * rng.standard_normal((len(picks), base.shape[1])), 0)
    copies, truth = [], {}
    for i in range(planted):
        y, c = perturbed(X[i].astype(np.float32), float(rng.uniform(0.97, 1.0)), rng)
        copies.append(y)
        truth[(f"r{i:07d}", f"r{n - planted + i:07d}")] = c
    X = np.vstack([X, np.array(copies)]).astype(np.float32)
    return pa.table({
        "path": [f"r{i:07d}" for i in range(n)],
        "label": [f"c{i % 10}" for i in range(n)],
        "sha256": [f"{i:064x}" for i in range(n)],
        "features": pa.array(list(X), pa.list_(pa.float32())),
        "is_test": [i % 5 == 0 for i in range(n)],
    }), truth  # fmt: skip


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    from pool3.config import load_config
    from pool3.duplicates import lsh, search
    from pool3.session import build_session

    search.MAX_LISTED = lsh.MAX_LISTED = 10**7  # list every pair, to count them
    means, residuals = real_parts(o.features) if o.features else synthetic_parts()
    rng = np.random.default_rng(0)
    base = np.maximum(means[rng.integers(0, len(means), len(residuals))] + residuals, 0)
    spark = build_session(load_config("local", overrides={"spark.master": "local[2]"}))
    spark.sparkContext.setLogLevel("ERROR")
    frames, truths, exact_found = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        for n in sorted({int(s) for s in str(o.rows).split(",") if s}):
            t, truths[n] = table(n, o.planted, base, seed=n)
            pq.write_table(t, f"{tmp}/rows{n}.parquet")
            frames[n] = spark.read.parquet(f"{tmp}/rows{n}.parquet")

        def method(name: str) -> FuncVariant:
            def go(n: int) -> Figures:
                if name == "exact" and n > o.exact_max:
                    return {}
                search.EXACT_MAX_ROWS = 10**9 if name == "exact" else 0
                started = time.perf_counter()
                got = search.find_duplicates(frames[n], threshold=0.98, seed=42)
                seconds = time.perf_counter() - started
                found = {tuple(p["paths"]) for p in got.pairs if p["kind"] == "near"}
                if name == "exact":
                    exact_found[n] = found
                out = {"seconds": seconds, "near_pairs": got.counts["near_pairs"]}
                for lo, hi in BANDS:
                    want = [k for k, c in truths[n].items() if lo <= c < hi]
                    out[f"recall_{lo}-{min(hi, 1.0)}"] = sum(k in found for k in want) / max(
                        1, len(want)
                    )
                if n in exact_found:
                    out["below"] = len(found - exact_found[n] - set(truths[n]))
                return out

            return FuncVariant(name, go)

        records = alternate([method("exact"), method("lsh")], rounds=o.rounds, items=sorted(frames))
    spark.stop()
    return medians(records), records, ["recall: planted pairs found / planted, by true cosine"]


SCENARIO = Scenario(
    name="duplicates",
    doc=__doc__ or "",
    run=run,
    options={"features": "", "rows": "20000,100000", "planted": 300, "exact_max": 30000,
             "rounds": 2},
    quick={"rows": "1000", "planted": 30, "rounds": 1},
)  # fmt: skip
