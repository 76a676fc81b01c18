"""Evaluation report written next to the classifier.

``write_report`` puts into the model directory:

- ``metrics.json``: :func:`pool3.training.metrics.metrics` plus a ``run`` section (sizes, split...);
- ``confusion_matrix.csv``: every class as header and index (true rows, predicted columns);
- ``confusion_matrix.png``: see :mod:`pool3.report.plot`;
- ``report.html``: one self-contained page (see :mod:`pool3.report.html`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from pool3.errors import OutputError
from pool3.report.html import render_html
from pool3.report.plot import confusion_png
from pool3.storage.fs import FS_ERRORS, join, why, write_files

if TYPE_CHECKING:
    from pool3.training.result import TrainResult

log = logging.getLogger(__name__)

EXAMPLES_PER_PAIR = 3
REPORT_FILES = {
    "metrics_json": "metrics.json",
    "confusion_csv": "confusion_matrix.csv",
    "confusion_png": "confusion_matrix.png",
    "report_html": "report.html",
}


def summary_line(metrics: Mapping[str, Any]) -> str:
    """One line in the tutorial's style, accuracy first.

    >>> summary_line({"accuracy": 0.954, "n_test": 1000, "n_classes": 48, "f1_macro": 0.95})
    'Accuracy: 95.4% (n_test=1000, classes=48, macro F1=0.950)'
    """
    return (
        f"Accuracy: {100 * metrics['accuracy']:0.1f}% (n_test={metrics['n_test']}, "
        f"classes={metrics['n_classes']}, macro F1={metrics['f1_macro']:.3f})"
    )


def misclassified_examples(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    paths: Sequence[str] | np.ndarray,
    *,
    per_pair: int = EXAMPLES_PER_PAIR,
) -> dict[tuple[str, str], list[str]]:
    """Up to ``per_pair`` test paths for each (true, predicted) pair with true != predicted."""
    out: dict[tuple[str, str], list[str]] = {}
    for t, p, path in zip(y_true, y_pred, paths, strict=True):
        if t != p:
            found = out.setdefault((str(t), str(p)), [])
            if len(found) < per_pair:
                found.append(str(path))
    return out


def run_summary(result: TrainResult) -> dict[str, Any]:
    """The facts about a training run that the report shows next to the metrics."""
    params = result.params
    return {
        "train_images": result.n_train,
        "test_images": result.n_test,
        "rows_total": result.counts.get("rows_total"),
        "rows_error": result.counts.get("rows_error"),
        "rows_unlabelled": result.counts.get("rows_unlabelled"),
        "feature_fingerprint": result.fingerprint,
        "split": _split_text(result.classifier.meta.get("split", {}), params),
        "seed": params.seed,
        "estimator": result.solver,
        "C": params.C,
        "fit_seconds": round(result.fit_seconds, 3),
    }


def _split_text(split: Mapping[str, Any], params: Any) -> str:
    """``content hash: sha256(...), test_size=0.2, stratify=True``: which split ran."""
    method = split.get("method", params.split)
    rule = split.get("rule", "")
    return (
        f"{method}{f' ({rule})' if rule else ''}, test_size={params.test_size}, "
        f"stratify={params.stratify}"
    )


#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with a leading ``'`` if a spreadsheet would run it as a formula (OWASP's
    advice for CSV injection); numbers such as ``-1`` or ``+3.5`` stay numbers."""
    if not cell.startswith(FORMULA_STARTS):
        return cell
    try:
        float(cell)
        return cell
    except ValueError:
        return "'" + cell


def confusion_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The full confusion matrix as a DataFrame: index = true, columns = predicted; labels
    made safe to open in a spreadsheet (:func:`spreadsheet_safe`)."""
    labels = [spreadsheet_safe(str(label)) for label in metrics["labels"]]
    frame = pd.DataFrame(metrics["confusion_matrix"], index=labels, columns=labels)
    frame.index.name = "true\\predicted"
    return frame


def report_files(
    result: TrainResult,
    *,
    example_paths: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> dict[str, bytes]:
    """The evaluation report's files, ``{name: bytes}``: ``metrics.json``,
    ``confusion_matrix.csv``, ``confusion_matrix.png`` and ``report.html``.

    ``example_paths`` (``{(true, predicted): [path, ...]}``) are shown for the most-confused
    pairs; by default the misclassified test images of ``result``.
    """
    metrics = result.metrics
    run = run_summary(result)
    if example_paths is None:
        example_paths = misclassified_examples(result.y_test, result.y_pred, result.paths_test)
    png = confusion_png(metrics["confusion_matrix"], metrics["labels"])
    html = render_html(metrics, run=run, png=png, examples=example_paths)
    return {
        "metrics.json": json.dumps({**metrics, "run": run}, indent=2, ensure_ascii=False).encode(
            "utf-8"
        ),
        "confusion_matrix.csv": confusion_frame(metrics).to_csv().encode("utf-8"),
        "confusion_matrix.png": png,
        "report.html": html.encode("utf-8"),
    }


def write_report(
    result: TrainResult,
    model_dir: str | os.PathLike[str],
    *,
    example_paths: Mapping[tuple[str, str], Sequence[str]] | None = None,
    spark: SparkSession | None = None,
) -> dict[str, str]:
    """Write :func:`report_files` into ``model_dir`` (a path or URI; created if absent),
    outside any commit: for notebooks and tests (``pool3 train`` commits them with the model).

    Returns ``{"metrics_json", "confusion_csv", "confusion_png", "report_html"}`` -> the
    written path. Raises :class:`OutputError` when the directory or a file cannot be written.
    """
    files = report_files(result, example_paths=example_paths)
    where = os.fspath(model_dir)
    try:
        write_files(spark, where, files)
    except FS_ERRORS as err:
        raise OutputError(
            f"cannot write the report into {where}: {why(err)}; check the path and permissions."
        ) from err
    written = {key: join(where, name) for key, name in REPORT_FILES.items()}
    log.info("%s; report in %s", summary_line(result.metrics), written["report_html"])
    return written
