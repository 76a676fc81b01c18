"""The prepared rows as numpy arrays on the driver, for the scikit-learn solvers.

:func:`collect_split` brings the rows that :func:`pool3.training.rules.prepare` checked and
split to the driver once, sorted by path (so that a fit does not depend on how Spark
happened to order them), and stacks the features into one float32 array per set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pool3.training.rules import TrainingTable


@dataclass(frozen=True, eq=False)
class Split:
    """Train/test arrays of a :class:`~pool3.training.rules.TrainingTable`.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, n_features), float32, C-contiguous
    y_train, y_test : ndarray of shape (n,), str
    paths_train, paths_test : ndarray of shape (n,), str
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    paths_train: np.ndarray
    paths_test: np.ndarray


def stack_features(features: pd.Series, n_features: int) -> np.ndarray:
    """One float32 (n, n_features) array, filled row by row: peak memory is the result."""
    X = np.empty((len(features), n_features), dtype=np.float32)
    for i, vector in enumerate(features):
        X[i] = vector
    return X


def collect_split(data: TrainingTable, n_features: int) -> Split:
    """Collect ``data.frame`` (``path, label, features, is_test``) into train/test arrays."""
    frame: pd.DataFrame = data.frame.toPandas()
    frame = frame.sort_values("path", kind="stable", ignore_index=True)
    test = frame["is_test"].to_numpy(dtype=bool)
    paths = np.asarray(frame["path"].astype(str), dtype=np.str_)
    y = np.asarray(frame["label"].astype(str), dtype=np.str_)
    X = stack_features(frame["features"], n_features)
    return Split(
        X_train=X[~test],
        X_test=X[test],
        y_train=y[~test],
        y_test=y[test],
        paths_train=paths[~test],
        paths_test=paths[test],
    )
