"""pool_3-like training tables of any size, made from real pool3 features.

A real feature table (``pool3 featurize`` of labelled images, e.g. Fashion-MNIST) gives
class means ``mu_a`` and within-class residuals ``r = x - mu_label(x)``. Class ``k`` of the
synthetic table is centred on a real class mean moved by one real residual
(``m_k = mu_a + r_j``: a sub-category), and each of its rows adds another real residual
scaled by ``spread``: ``x = max(0, m_k + spread * (cos t r_i + sin t r_j))``, two residuals
mixed at a random angle ``t`` (the same covariance, and no accidental exact duplicates).
So the rows keep pool_3's non-negativity, scale and correlation structure (the
within-class covariance is the real one), and the classes are as confusable as real
neighbouring categories. Same seed, same table. :func:`write_table` writes a committed
feature table (``_SUCCESS``, manifest) that ``pool3 train`` reads like one ``pool3
featurize`` wrote, ``copies`` of its rows repeated as exact duplicates (same ``sha256``).
Without a real table (smoke runs), :func:`synthetic_parts` stands in for it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FINGERPRINT = "inception-v3-2015:tablegen"


def real_parts(features: str) -> tuple[np.ndarray, np.ndarray]:
    """(class means (a, 2048), residuals (m, 2048)) of a real feature table, float32."""
    table = pq.read_table(features, columns=["label", "features", "error"])
    ok = table.filter(pa.compute.is_null(table["error"]))
    labels = np.asarray(ok["label"].to_pylist(), dtype=str)
    flat = ok["features"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    X = flat.reshape(len(labels), -1).astype(np.float32)
    names = np.unique(labels)
    means = np.stack([X[labels == c].mean(axis=0) for c in names])
    residuals = X - means[np.searchsorted(names, labels)]
    return means, residuals


def synthetic_parts(
    classes: int = 10, rows: int = 400, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stand-ins for :func:`real_parts` without a real table: pool_3-like means
    (non-negative, mean ~0.3) and Gaussian residuals."""
    rng = np.random.default_rng(seed)
    means = np.maximum(0, 0.2 + 0.3 * rng.standard_normal((classes, 2048))).astype(np.float32)
    return means, (0.15 * rng.standard_normal((rows, 2048))).astype(np.float32)


class TableGen:
    """Rows of the synthetic table, deterministic for ``seed``; see the module docstring."""

    def __init__(
        self, means: np.ndarray, residuals: np.ndarray, *, classes: int, spread: float, seed: int
    ) -> None:
        rng = np.random.default_rng(seed)
        self.residuals = residuals
        self.spread = np.float32(spread)
        base = rng.integers(0, len(means), classes)
        shift = rng.integers(0, len(residuals), classes)
        self.centres = (means[base] + residuals[shift]).astype(np.float32)
        self.classes = classes
        self.seed = seed

    def chunk(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start .. start + n``: (X (n, 2048) float32, class index (n,))."""
        rng = np.random.default_rng([self.seed, start])
        y = rng.integers(0, self.classes, n)
        pick = rng.integers(0, len(self.residuals), (2, n))
        # Two real residuals mixed at a random angle: the same covariance as one (for
        # independent picks), and no two rows alike (one residual per row repeats once a
        # class has more rows than there are residuals: accidental exact duplicates).
        angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None]
        mixed = np.cos(angle) * self.residuals[pick[0]] + np.sin(angle) * self.residuals[pick[1]]
        X = self.centres[y] + self.spread * mixed
        np.maximum(X, 0, out=X)
        return X, y

    def arrays(self, n: int, chunk: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
        X = np.empty((n, self.centres.shape[1]), np.float32)
        y = np.empty(n, np.int64)
        for start in range(0, n, chunk):
            X[start : start + chunk], y[start : start + chunk] = self.chunk(
                start, min(chunk, n - start)
            )
        return X, y

    def batches(self, n: int, chunk: int, copies: int) -> Iterator[pa.RecordBatch]:
        d = self.centres.shape[1]
        if copies > min(chunk, n) // 2:
            raise SystemExit(f"exact copies {copies}: at most half of the first chunk of rows")
        first: tuple[np.ndarray, np.ndarray] | None = None
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            X, y = self.chunk(start, m)
            if first is None:  # the last `copies` rows repeat the first ones' content
                first = X[:copies].copy(), y[:copies].copy()
            ids = np.arange(start, start + m)
            for j in range(max(start, n - copies), start + m):
                src = j - (n - copies)
                X[j - start], y[j - start] = first[0][src], first[1][src]
            sha = [hashlib.sha256(x.tobytes()).hexdigest() for x in X]
            labels = np.array([f"class_{v:02d}" for v in y])
            feats = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), d)
            yield pa.RecordBatch.from_pydict(
                {
                    "path": [
                        f"file:/gen/class_{v:02d}/img_{i:08d}.jpg"
                        for v, i in zip(y, ids, strict=True)
                    ],
                    "label": labels.tolist(),
                    "sha256": sha,
                    "width": pa.array(np.full(m, 299, np.int32)),
                    "height": pa.array(np.full(m, 299, np.int32)),
                    "features": feats.cast(pa.list_(pa.float32())),
                    "model": [FINGERPRINT] * m,
                    "runtime": ["openvino"] * m,
                    "precision": ["float32"] * m,
                    "error": pa.nulls(m, pa.string()),
                }
            )


def write_table(
    gen: TableGen, out: str, n: int, *, copies: int = 0, part_rows: int = 50_000
) -> None:
    """A committed feature table of ``n`` rows under the local folder ``out``."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    for i, batch in enumerate(gen.batches(n, part_rows, copies)):
        # row groups of ~128 MB, as Spark writes them (parquet.block.size)
        pq.write_table(
            pa.Table.from_batches([batch]), path / f"part-{i:05d}.parquet", row_group_size=16384
        )
    manifest = {
        "command": "featurize",
        "rows": n,
        "counts": {"rows": n, "images": n, "errors": 0},
        "made_by": "bench/harness/tables.py",
    }
    (path / "_pool3_manifest.json").write_text(json.dumps(manifest))
    (path / "_SUCCESS").write_text("")
    os.sync()
