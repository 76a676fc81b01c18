"""Deterministic, real-ish feature tables for the training/report tests (no Spark, no TF).

scikit-learn's handwritten digits (8x8 images, 64 values) are projected to 2048
non-negative dimensions with a fixed random matrix: linear structure is kept, so a
linear SVM reaches ~95% like on pool_3 features, and the tests can tell a working fit
from a broken one.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
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
    """The Parquet schema as pandas: path, label, sha256, features, model, error.

    ``sha256`` stands for the image's content: a hash of its features, so that equal
    feature vectors are "the same image".
    """
    return pd.DataFrame(
        {
            "path": [f"{prefix}/{label}/{label}_{i}.jpg" for i, label in enumerate(y)],
            "label": list(y),
            "sha256": [hashlib.sha256(np.asarray(x, np.float32).tobytes()).hexdigest() for x in X],
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


#: The feature table's columns as a Spark DDL schema (the training-relevant part).
SCHEMA = (
    "path string, label string, sha256 string, features array<float>, model string, error string"
)


def table(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """A pandas feature table as a Parquet table of the feature-table schema, read by Spark.

    Written to a fresh temporary folder (in two parts), as ``pool3 featurize`` writes one:
    the driver solvers read the Parquet parts themselves (:mod:`pool3.training.table.data`).
    """
    columns = [c for c in ("path", "label", "sha256", "features", "model", "error") if c in frame]
    schema = ", ".join(part for part in SCHEMA.split(", ") if part.split()[0] in columns)
    folder = tempfile.mkdtemp(prefix="pool3-features-")
    atexit.register(shutil.rmtree, folder, True)
    where = os.path.join(folder, "table")
    spark.createDataFrame(frame[columns], schema).repartition(2).write.parquet(where)
    return spark.read.parquet(where)


def blob_frame(n_classes: int, per_class: int, seed: int = 0) -> pd.DataFrame:
    """Separable, non-negative (like pool_3 after ReLU) 2048-d blobs as a feature table."""
    X, y = blobs(n_classes, per_class, seed=seed)
    return feature_table(np.maximum(X, 0.0), y)
