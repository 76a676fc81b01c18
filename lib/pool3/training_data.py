"""From a feature table to training arrays, and the train/test split.

The feature table is what the featurize job wrote to Parquet, read on the driver as
pandas: one row per image with ``path``, ``label``, ``features`` (2048 float32),
``model`` (the feature model's fingerprint) and ``error`` (null when the image was
featurized). Everything here is plain numpy/pandas so it is testable without Spark.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pool3.errors import DataError, InputError
from pool3.train_params import TrainParams

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "label", "features", "model", "error")
FEATURE_DIM = 2048
_EXAMPLES = 3


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Training arrays taken from a feature table.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32, C-contiguous
    y : ndarray of shape (n_samples,), str
    paths : ndarray of shape (n_samples,), str
    fingerprint : str
        The single feature-model fingerprint shared by every row.
    counts : dict
        ``rows_total``, ``rows_error``, ``rows_unlabelled``, ``rows_used``.
    """

    X: np.ndarray
    y: np.ndarray
    paths: np.ndarray
    fingerprint: str
    counts: dict[str, int]

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return [str(c) for c in np.unique(self.y)]


@dataclass(frozen=True, eq=False)
class Split:
    """Train/test partition of a :class:`PreparedData`, keeping the image paths."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    paths_train: np.ndarray
    paths_test: np.ndarray


def _examples(paths: Sequence[str] | np.ndarray) -> str:
    shown = ", ".join(repr(str(p)) for p in list(paths)[:_EXAMPLES])
    return shown + (", ..." if len(paths) > _EXAMPLES else "")


def _is_unlabelled(labels: pd.Series) -> np.ndarray:
    as_text = labels.astype("string").str.strip()
    return np.asarray(labels.isna() | (as_text == "").fillna(True), dtype=bool)


def check_columns(columns: Sequence[str]) -> None:
    """InputError unless a feature table's ``columns`` hold :data:`REQUIRED_COLUMNS`.

    Shared by the driver path (pandas) and the Spark path.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(
            f"feature table lacks columns {missing}; expected {list(REQUIRED_COLUMNS)}, "
            f"got {list(columns)}. Point training at the output of pool3 featurize."
        )


def single_fingerprint(counts: Mapping[str | None, int]) -> str:
    """The one feature-model fingerprint of ``{fingerprint or None: rows}``, or DataError.

    Shared by the driver path (pandas) and the Spark path (a ``groupBy("model")``).
    """
    named = {("<missing>" if fp is None else str(fp)): int(n) for fp, n in counts.items()}
    if len(named) > 1 or "<missing>" in named:
        listed = ", ".join(
            f"{fp!r}: {n} rows" for fp, n in sorted(named.items(), key=lambda kv: -kv[1])
        )
        raise DataError(
            f"feature table mixes feature-model fingerprints ({listed}); a classifier needs "
            "features from exactly one model. Re-featurize all images with one model "
            "(into a fresh output, or with output mode 'overwrite') and train again."
        )
    return next(iter(named))


def _single_fingerprint(models: pd.Series) -> str:
    counts = models.astype("string").value_counts(dropna=False)
    return single_fingerprint({(None if pd.isna(fp) else str(fp)): n for fp, n in counts.items()})


def _stack_features(features: pd.Series, paths: np.ndarray, n_features: int | None) -> np.ndarray:
    missing = np.asarray(features.isna(), dtype=bool)
    if missing.any():
        raise DataError(
            f"{int(missing.sum())} labelled rows have no features although their error is "
            f"null (e.g. {_examples(paths[missing])}); re-run pool3 featurize for them."
        )
    lengths = np.fromiter((len(v) for v in features), dtype=np.int64, count=len(features))
    expected = int(lengths[0]) if n_features is None else n_features
    wrong = lengths != expected
    if wrong.any():
        raise DataError(
            f"{int(wrong.sum())} rows have feature vectors of length "
            f"{sorted(set(lengths[wrong].tolist()))[:5]}, expected {expected} "
            f"(e.g. {_examples(paths[wrong])}); re-featurize them with the same model."
        )
    # Filled row by row: peak memory is the result itself, not a list of copies plus it.
    X = np.empty((len(features), expected), dtype=np.float32)
    for i, vector in enumerate(features):
        X[i] = vector
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} rows have NaN or infinite features (e.g. {_examples(paths[bad])}); "
            "re-featurize those images or remove them from the input."
        )
    return X


def prepare_training_data(
    df: pd.DataFrame, *, n_features: int | None = FEATURE_DIM
) -> PreparedData:
    """Turn a feature table into training arrays.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``path, label, features, model, error`` (the Parquet schema);
        ``features`` holds one array-like of ``n_features`` floats per row.
    n_features : int or None, keyword-only
        Expected feature length (2048 for pool_3); ``None`` accepts any common length.

    Returns
    -------
    PreparedData
        ``X`` float32 (n, n_features) C-contiguous, ``y``/``paths`` str arrays.

    Raises
    ------
    InputError
        When a required column is missing.
    DataError
        Mixed fingerprints, NaN/inf or missing features, no usable rows, fewer than 2 classes.
    """
    check_columns(list(df.columns))
    total = len(df)
    is_error = np.asarray(df["error"].notna(), dtype=bool)
    ok = df.loc[~is_error]
    unlabelled = _is_unlabelled(ok["label"])
    if unlabelled.any():
        log.info(
            "skipping %d rows without a label (e.g. %s)",
            int(unlabelled.sum()),
            _examples(ok["path"].to_numpy()[unlabelled]),
        )
    used = ok.loc[~unlabelled]
    counts = {
        "rows_total": total,
        "rows_error": int(is_error.sum()),
        "rows_unlabelled": int(unlabelled.sum()),
        "rows_used": len(used),
    }
    log.info("feature table: %s", counts)
    if used.empty:
        raise DataError(
            f"no usable rows in the feature table ({counts}); featurize labelled images "
            "(labels come from the folder layout) before training."
        )
    fingerprint = _single_fingerprint(used["model"])
    paths = np.asarray(used["path"].astype(str), dtype=np.str_)
    y = np.asarray(used["label"].astype(str), dtype=np.str_)
    X = _stack_features(used["features"], paths, n_features)
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(
            f"training needs at least 2 classes, got only {str(classes[0])!r} ({len(y)} images); "
            "add images of other classes (one sub-folder per class)."
        )
    return PreparedData(X=X, y=y, paths=paths, fingerprint=fingerprint, counts=counts)


def split(data: PreparedData, params: TrainParams) -> Split:
    """Split into train and test sets, stratified by label unless ``params.stratify`` is False.

    With ``stratify=False`` this is the tutorial's ``train_test_split(features, labels,
    test_size=0.2, random_state=42)``: the same rows end up in the test set.

    Raises
    ------
    DataError
        A class has fewer than 2 images with stratify, or the sets would be too small.
    """
    labels, per_class = np.unique(data.y, return_counts=True)
    if params.stratify:
        lonely = labels[per_class < 2]
        if len(lonely):
            raise DataError(
                f"classes with a single image cannot be stratified: {_examples(lonely)} "
                f"({len(lonely)} classes). Add images to them, drop the class, or use "
                "--no-stratify."
            )
    index = np.arange(len(data.y))
    try:
        train_idx, test_idx = train_test_split(
            index,
            test_size=params.test_size,
            random_state=params.seed,
            stratify=data.y if params.stratify else None,
        )
    except ValueError as err:
        raise DataError(
            f"cannot split {len(index)} images of {len(labels)} classes with "
            f"test_size={params.test_size}: {err}. Add images, raise or lower --test-size, "
            "or use --no-stratify."
        ) from err
    if len(np.unique(data.y[train_idx])) < 2:
        raise DataError(
            f"the training set of {len(train_idx)} images holds a single class; add images or "
            "use a stratified split."
        )
    return Split(
        X_train=data.X[train_idx],
        X_test=data.X[test_idx],
        y_train=data.y[train_idx],
        y_test=data.y[test_idx],
        paths_train=data.paths[train_idx],
        paths_test=data.paths[test_idx],
    )
