"""Deterministic, real-ish feature tables for the training/report tests (no Spark, no TF).

scikit-learn's handwritten digits (8x8 images, 64 values) are projected to 2048
non-negative dimensions with a fixed random matrix: linear structure is kept, so a
linear SVM reaches ~95% like on pool_3 features, and the tests can tell a working fit
from a broken one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

FINGERPRINT = "inception_v3-pool3:test0001"
DIGIT_NAMES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)  # fmt: skip


def digits_features(
    n_classes: int = 10, per_class: int = 60, dim: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """X float32 (n, dim) and y (n,) str for the first ``per_class`` digits of each class."""
    digits = load_digits()
    keep = np.concatenate(
        [np.flatnonzero(digits.target == c)[:per_class] for c in range(n_classes)]
    )
    projection = np.random.default_rng(2048).normal(size=(64, dim)) / 8.0
    X = np.maximum((digits.data[keep] / 16.0) @ projection, 0.0).astype(np.float32)
    y = np.array(DIGIT_NAMES)[digits.target[keep]]
    return X, y


def feature_table(
    X: np.ndarray, y: np.ndarray, *, model: str = FINGERPRINT, prefix: str = "imgs"
) -> pd.DataFrame:
    """The Parquet schema as pandas: path, label, features, model, error."""
    return pd.DataFrame(
        {
            "path": [f"{prefix}/{label}/{label}_{i}.jpg" for i, label in enumerate(y)],
            "label": list(y),
            "features": list(X),
            "model": model,
            "error": None,
        }
    )


def digits_table(n_classes: int = 10, per_class: int = 60) -> pd.DataFrame:
    X, y = digits_features(n_classes, per_class)
    return feature_table(X, y)


def blobs(
    n_classes: int, per_class: int, dim: int = 2048, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated gaussian blobs: labels ``c00``, ``c01``..., X float32 (n, dim)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)).astype(np.float32)
    X = np.repeat(centres, per_class, axis=0) + 0.5 * rng.normal(
        size=(n_classes * per_class, dim)
    ).astype(np.float32)
    y = np.repeat([f"c{i:02d}" for i in range(n_classes)], per_class)
    return X.astype(np.float32), y
