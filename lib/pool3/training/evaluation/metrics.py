"""Classification metrics as a JSON-ready ``dict`` (persisted by the report, not printed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from pool3.errors import DataError

#: the normal quantile of a two-sided 95% interval
Z95 = NormalDist().inv_cdf(0.975)


def metrics(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    labels: Sequence[str],
    *,
    top_confused: int = 10,
) -> dict[str, Any]:
    """Accuracy, averaged and per-class scores, confusion matrix and most-confused pairs.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,), str
    labels : sequence of str
        Order of the classes in ``per_class`` and in the confusion matrix rows (true)
        and columns (predicted). Every label in ``y_true``/``y_pred`` must be listed.
    top_confused : int, keyword-only
        How many off-diagonal pairs to keep in ``most_confused``.

    Returns
    -------
    dict
        ``accuracy``, ``accuracy_ci95`` (Wilson 95% interval, ``[low, high]``), ``n_test``,
        ``n_classes``, ``labels``,
        ``precision_macro``, ``recall_macro``, ``f1_macro``,
        ``precision_weighted``, ``recall_weighted``, ``f1_weighted``,
        ``per_class`` ({label: {precision, recall, f1, support}}, in ``labels`` order),
        ``confusion_matrix`` (list of lists of int, ``[true][predicted]``) and
        ``most_confused`` (list of ``{"true", "predicted", "count"}``, largest first).
        Only Python ``int``/``float``/``str`` values, so ``json.dump`` works directly.
    """
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    labels = [str(label) for label in labels]
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise DataError(
            f"metrics need as many predictions as true labels, at least one; got "
            f"{len(y_true)} true labels and {len(y_pred)} predictions."
        )
    unknown = sorted((set(np.unique(y_true)) | set(np.unique(y_pred))) - set(labels))
    if unknown:
        raise DataError(
            f"labels {unknown[:5]} occur in y_true/y_pred but not in labels={labels[:5]}...; "
            "pass every class in labels."
        )
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    correct = int(np.sum(y_true == y_pred))
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "accuracy_ci95": list(wilson_interval(correct, len(y_true))),
        "n_test": len(y_true),
        "n_classes": len(labels),
        "labels": labels,
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        out[f"precision_{average}"] = float(p)
        out[f"recall_{average}"] = float(r)
        out[f"f1_{average}"] = float(f)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    out["per_class"] = {
        label: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, label in enumerate(labels)
    }
    out["confusion_matrix"] = cm.astype(int).tolist()
    out["most_confused"] = most_confused(cm, labels, top=top_confused)
    return out


def most_confused(
    cm: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str], *, top: int = 10
) -> list[dict[str, Any]]:
    """Off-diagonal cells of a confusion matrix, largest count first.

    Parameters
    ----------
    cm : array-like of shape (n_classes, n_classes), int
        ``cm[i][j]`` = images of true class ``labels[i]`` predicted as ``labels[j]``.
    labels : sequence of str
    top : int, keyword-only

    Returns
    -------
    list of dict
        ``{"true": str, "predicted": str, "count": int}``; ties broken by label order;
        cells with count 0 are left out.
    """
    m = np.asarray(cm, dtype=np.int64).copy()
    np.fill_diagonal(m, 0)
    rows, cols = np.nonzero(m)
    order = sorted(zip(rows.tolist(), cols.tolist(), strict=True), key=lambda rc: -m[rc])
    return [
        {"true": str(labels[i]), "predicted": str(labels[j]), "count": int(m[i, j])}
        for i, j in order[: max(top, 0)]
    ]


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% for the default ``z``).

    Better than the normal approximation near 0 and 1 and for small ``n`` (it never leaves
    [0, 1]): Wilson, JASA 22 (1927); Brown, Cai & DasGupta, Stat. Sci. 16 (2001).

    >>> [round(x, 4) for x in wilson_interval(49, 60)]
    [0.7008, 0.8944]
    """
    if n <= 0:
        raise DataError(f"an interval needs n >= 1 trials, got n={n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
