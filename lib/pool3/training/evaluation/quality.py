"""Data-quality views of a trained model: suspected label errors and the accuracy without
leaked test images (their duplicates are found by :mod:`pool3.duplicates.search`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from pool3.training.evaluation.metrics import wilson_interval

#: suspected label errors kept per split
MAX_SUSPECTS = 20
#: how far (in SVM score units) the predicted class must beat the given label: a margin of
#: 0.5 is half the hinge's width, beyond a coin flip between two classes
MIN_MARGIN = 0.5


def suspected_label_errors(
    paths: Sequence[str] | np.ndarray,
    labels: Sequence[str] | np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    *,
    split: str,
    top: int = MAX_SUSPECTS,
    min_margin: float = MIN_MARGIN,
) -> list[dict[str, Any]]:
    """Images whose given label the classifier confidently disagrees with, worst first.

    ``margin`` is the score of the predicted class minus the score of the given label
    (the SVM's own units: a margin above 1 is beyond the hinge on both sides). Only
    images predicted as another class by at least ``min_margin``, whose label the
    classifier knows, are listed.

    Returns
    -------
    list of dict
        ``path``, ``label``, ``predicted``, ``margin``, ``split``; at most ``top``.
    """
    if len(paths) == 0:
        return []
    names = np.asarray(classes).astype(str)
    index = {c: i for i, c in enumerate(names)}
    given = np.array([index.get(str(label), -1) for label in labels])
    best = np.argmax(scores, axis=1)
    rows = np.flatnonzero((given >= 0) & (best != given))
    if not len(rows):
        return []
    margin = scores[rows, best[rows]] - scores[rows, given[rows]]
    rows, margin = rows[margin >= min_margin], margin[margin >= min_margin]
    order = rows[np.argsort(-margin, kind="stable")][:top]
    by_row = dict(zip(rows.tolist(), margin.tolist(), strict=True))
    return [
        {
            "path": str(paths[i]),
            "label": str(labels[i]),
            "predicted": str(names[best[i]]),
            "margin": round(float(by_row[i]), 4),
            "split": split,
        }
        for i in order.tolist()
    ]


def accuracy_without(
    y_true: np.ndarray, y_pred: np.ndarray, paths: np.ndarray, leaked: Collection[str]
) -> dict[str, Any] | None:
    """Test accuracy over the test images that have no copy in the training set, with its
    Wilson 95% interval; None when no test image leaked."""
    keep = np.array([str(p) not in leaked for p in paths], dtype=bool)
    n_leaked = int((~keep).sum())
    if not n_leaked:
        return None
    n = int(keep.sum())
    correct = int((np.asarray(y_true)[keep] == np.asarray(y_pred)[keep]).sum())
    return {
        "leaked_test_images": n_leaked,
        "n_test": n,
        "accuracy": correct / n if n else None,
        "accuracy_ci95": list(wilson_interval(correct, n)) if n else None,
        "leaked_accuracy": float((np.asarray(y_true)[~keep] == np.asarray(y_pred)[~keep]).mean()),
    }
