"""Near-duplicate search: LSH on Spark vs the exact all-pairs product, recall and time.

    python bench/duplicates_bench.py [--rows 20000,100000] [--features out/demo/features]

Rows: pool_3 features of real images (``--features``, a Parquet written by ``pool3
featurize``; default the demo's 300 Fashion-MNIST images), resampled to ``n`` rows as
``max(0, x_k + 0.6 * sd * N(0, 1))`` around random real rows ``x_k`` (unrelated rows then have
the cosines of real ones: ~0.5-0.9). ``--planted`` of them get a copy perturbed to a cosine
drawn uniformly in [0.97, 1.0), with other content hashes: the near duplicates to find.

Each size is searched by :func:`pool3.duplicates.search.find_duplicates` in ``local[2]``
twice, alternating: ``lsh`` (Spark, ``near_lsh``) and ``exact`` (all pairs on the driver,
forced by raising ``EXACT_MAX_ROWS``; skipped above ``--exact-max``). Recall is measured per
cosine band against the exact result (or, where it was skipped, against the planted pairs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common import append_results, calibrate, md_table

BANDS = ((0.97, 0.98), (0.98, 0.985), (0.985, 0.99), (0.99, 0.995), (0.995, 1.0001))


def real_features(path: str) -> np.ndarray:
    table = pq.read_table(path, columns=["features", "error"]).to_pylist()
    return np.array([r["features"] for r in table if r["error"] is None], dtype=np.float32)


def perturbed(x: np.ndarray, target: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A non-negative copy of ``x`` at cosine ~``target`` (bisection on the noise scale)."""
    noise = rng.standard_normal(x.shape).astype(np.float32) * x.std()
    lo, hi = 0.0, 2.0
    for _ in range(30):
        t = (lo + hi) / 2
        y = np.maximum(x + t * noise, 0)
        c = float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
        lo, hi = (t, hi) if c > target else (lo, t)
    return y, c


def table(n: int, planted: int, base: np.ndarray, seed: int) -> tuple[pa.Table, dict]:
    rng = np.random.default_rng(seed)
    sd = base.std(axis=0, keepdims=True)
    picks = rng.integers(0, len(base), n - planted)
    X = np.maximum(base[picks] + 0.6 * sd * rng.standard_normal((len(picks), base.shape[1])), 0)
    X = X.astype(np.float32)
    copies, truth = [], {}
    for i in range(planted):
        y, c = perturbed(X[i], float(rng.uniform(0.97, 1.0)), rng)
        copies.append(y)
        truth[(f"r{i:07d}", f"r{n - planted + i:07d}")] = c
    X = np.vstack([X, np.array(copies, dtype=np.float32)])
    paths = [f"r{i:07d}" for i in range(n)]
    t = pa.table(
        {
            "path": paths,
            "label": [f"c{i % 10}" for i in range(n)],
            "sha256": [f"{i:064x}" for i in range(n)],
            "features": pa.array(list(X), pa.list_(pa.float32())),
            "is_test": [i % 5 == 0 for i in range(n)],
        }
    )
    return t, truth


def recall_rows(found: set, truth: dict) -> list[str]:
    out = []
    for lo, hi in BANDS:
        want = [k for k, c in truth.items() if lo <= c < hi]
        got = sum(k in found for k in want)
        out.append(f"{got}/{len(want)}" if want else "-")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="20000,100000")
    ap.add_argument("--features", default="out/demo/features")
    ap.add_argument("--planted", type=int, default=300)
    ap.add_argument("--exact-max", type=int, default=30000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from pool3.config import load_config
    from pool3.duplicates import lsh as near_lsh
    from pool3.duplicates import search as dup
    from pool3.session import build_session

    dup.MAX_LISTED = near_lsh.MAX_LISTED = 10**7  # list every pair, to count them

    base = real_features(args.features)
    before = calibrate()
    spark = build_session(load_config("local", overrides={"spark.master": "local[2]"}))
    spark.sparkContext.setLogLevel("ERROR")
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(v) for v in args.rows.split(",")]:
            t, truth = table(n, args.planted, base, seed=n)
            where = str(Path(tmp) / f"rows{n}")
            pq.write_table(t, where + ".parquet")
            frame = spark.read.parquet(where + ".parquet")
            methods = ["lsh", "exact"] if n <= args.exact_max else ["lsh"]
            results = {}
            for method in methods * 2:  # alternating, two rounds each
                dup.EXACT_MAX_ROWS = 10**9 if method == "exact" else 0
                started = time.perf_counter()
                got = dup.find_duplicates(frame, threshold=0.98, seed=42)
                seconds = time.perf_counter() - started
                pairs = {tuple(p["paths"]) for p in got.pairs if p["kind"] == "near"}
                results.setdefault(method, []).append((seconds, pairs, got.counts))
            reference = truth
            if "exact" in results:
                exact_pairs = results["exact"][0][1]
                natural = len(exact_pairs - set(truth))
                notes.append(f"{n} rows: {natural} near pairs besides the planted ones (exact)")
            for method, runs in results.items():
                secs = [r[0] for r in runs]
                found = runs[-1][1]
                false = [k for k in found if k not in truth and "exact" in results
                         and k not in results["exact"][0][1]]  # fmt: skip
                rows.append(
                    [n, method, ", ".join(f"{s:.1f}" for s in secs),
                     runs[-1][2]["near_pairs"], *recall_rows(found, reference), len(false)]
                )  # fmt: skip
    spark.stop()
    after = calibrate()
    recall = [f"recall {lo}-{min(hi, 1.0)}" for lo, hi in BANDS]
    header = ["rows", "search", "seconds", "near pairs", *recall, "below threshold"]
    append_results(
        "Near-duplicate search (bench/duplicates_bench.py)",
        before=before,
        after=after,
        sections=[("find_duplicates in local[2], threshold 0.98", md_table(header, rows))],
        notes=[
            *notes,
            "recall columns: planted pairs found / planted, by their true cosine; "
            "'below threshold': reported pairs the exact search does not have (must be 0)",
            "planted pairs in 0.97-0.98 are below the threshold: their 'recall' must be 0",
        ],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
