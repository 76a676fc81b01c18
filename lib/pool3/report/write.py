"""Evaluation report written next to the classifier.

``write_report`` puts into the model directory:

- ``metrics.json``: :func:`pool3.training.evaluation.metrics.metrics` plus a ``run`` section
  (sizes, split...);
- ``confusion_matrix.csv``: every class as header and index (true rows, predicted columns);
- ``confusion_matrix.png``: see :mod:`pool3.report.plot`;
- ``report.html``: one self-contained page (see :mod:`pool3.report.html`).

Size (over ~300 lines): every file of the report is written here from one TrainResult; the
page itself (:mod:`.html`), its plots and thumbnails live in their own modules.
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

from pool3.duplicates.search import Duplicates
from pool3.errors import OutputError
from pool3.report import gallery
from pool3.report.html import c_search, render_html
from pool3.report.plot import confusion_png, cv_png
from pool3.report.thumbs import Thumb, thumbnails
from pool3.storage.fs import FS_ERRORS, join, why, write_files
from pool3.training.evaluation.quality import accuracy_without

if TYPE_CHECKING:
    from pool3.training.evaluation.result import TrainResult

log = logging.getLogger(__name__)

EXAMPLES_PER_PAIR = 3
#: thumbnails of misclassified test images: per most-confused pair, and in all
THUMBS_PER_PAIR, THUMBS_MISCLASSIFIED = 8, 60
#: correctly classified examples: up to 3 per class, ~150 in all (1 each for 100+ classes)
CORRECT_PER_CLASS, CORRECT_TOTAL = 3, 150
#: duplicate pairs shown with pictures (all of them are in metrics.json)
DUPLICATES_SHOWN = 24
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
    out: dict[str, Any] = {
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
    search = result.c_search
    if search:
        out["C_chosen_by"] = f"{search['folds']}-fold cross-validation (C = 'auto')"
    meta = result.classifier.meta
    if "newton" in meta:  # the Newton solvers: how the fit went
        out["fit"] = {**meta["newton"], "spark_jobs": meta.get("spark_jobs")}
    return out


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


#: ``{(true, predicted): [(path, score of the predicted class or None), ...]}``
Shown = dict[tuple[str, str], list[tuple[str, float | None]]]


def picture_sets(result: TrainResult) -> tuple[Shown, dict[str, list[str]]]:
    """The test images the report shows: misclassified ones per most-confused pair with the
    predicted class's score (``THUMBS_PER_PAIR`` each, ``THUMBS_MISCLASSIFIED`` in all),
    and correctly classified ones per class (``CORRECT_PER_CLASS``, ``CORRECT_TOTAL``)."""
    column = {c: j for j, c in enumerate(result.classifier.classes)}
    wanted = [(str(p["true"]), str(p["predicted"])) for p in result.metrics["most_confused"]]
    confused: Shown = {pair: [] for pair in wanted}
    n_labels = max(len(result.labels), 1)
    per_class = max(1, min(CORRECT_PER_CLASS, CORRECT_TOTAL // n_labels))
    correct: dict[str, list[str]] = {str(label): [] for label in result.labels}
    budget = THUMBS_MISCLASSIFIED
    for i, (t, p, path) in enumerate(
        zip(result.y_test, result.y_pred, result.paths_test, strict=True)
    ):
        t, p = str(t), str(p)
        if t == p:
            if len(correct[t]) < per_class:
                correct[t].append(str(path))
        elif (t, p) in confused and len(confused[(t, p)]) < THUMBS_PER_PAIR and budget > 0:
            budget -= 1
            confused[(t, p)].append((str(path), float(result.scores_test[i, column[p]])))
    return confused, correct


def _sections(
    result: TrainResult,
    duplicates: Duplicates | None,
    spark: SparkSession | None,
    px: int | None,
    example_paths: Mapping[tuple[str, str], Sequence[str]] | None,
) -> dict[str, str]:
    confused, correct = picture_sets(result)
    if example_paths is not None:
        confused = {k: [(str(p), None) for p in v] for k, v in example_paths.items()}
    shown_pairs = (duplicates.pairs if duplicates else [])[:DUPLICATES_SHOWN]
    paths = [p for shown in confused.values() for p, _ in shown]
    paths += [p for shown in correct.values() for p in shown]
    paths += [str(s["path"]) for s in result.suspects]
    paths += [p for pair in shown_pairs for p in pair["paths"]]
    thumbs: dict[str, Thumb] = thumbnails(spark, paths, px=px) if px else {}
    sections = {
        "Most confused pairs": gallery.confused(result.metrics["most_confused"], confused, thumbs),
        "Correctly classified examples": gallery.class_examples(correct, thumbs),
        "Suspected label errors": gallery.suspects(result.suspects, thumbs),
    }
    search = result.c_search
    if search:
        png = cv_png(
            search["grid"],
            search["cv_accuracy_mean"],
            search["cv_accuracy_std"],
            search["chosen"],
            search["folds"],
        )
        sections["Choice of C"] = c_search(search, png)
    if duplicates is not None:
        sections["Duplicates and label conflicts"] = gallery.duplicates(
            duplicates.pairs,
            duplicates.counts,
            thumbs,
            threshold=duplicates.threshold,
            shown=DUPLICATES_SHOWN,
        )
    return sections


def _notice(leakage: Mapping[str, Any] | None) -> str:
    if not leakage:
        return ""
    acc, (low, high) = leakage["accuracy"], leakage["accuracy_ci95"] or (0.0, 0.0)
    without = (
        f"{100 * acc:.1f}% (95% CI {100 * low:.1f}&ndash;{100 * high:.1f}%) on the "
        f"{leakage['n_test']} others"
        if acc is not None
        else "not defined (every test image leaked)"
    )
    return (
        f'<p class="warn"><b>Train/test leakage:</b> {leakage["leaked_test_images"]} test '
        f"images have a copy in the training set (accuracy on them "
        f"{100 * leakage['leaked_accuracy']:.1f}%). Without them the accuracy is {without}.</p>"
    )


def metrics_doc(result: TrainResult, duplicates: Duplicates | None = None) -> dict[str, Any]:
    """What ``metrics.json`` holds: the metrics, a ``run`` section, the suspected label
    errors, the C search, and with ``duplicates`` the pairs, their counts and the
    leakage-free accuracy."""
    run = run_summary(result)
    doc: dict[str, Any] = {**result.metrics, "run": run, "suspected_label_errors": result.suspects}
    if result.c_search:
        doc["C_search"] = result.c_search
    if duplicates is not None:
        run["duplicate_pairs"] = duplicates.counts.get("pairs", 0)
        run["label_conflicts"] = duplicates.counts.get("label_conflicts", 0)
        doc |= {
            "duplicates": duplicates.pairs,
            "duplicate_counts": duplicates.counts,
            "duplicate_cosine": duplicates.threshold,
            "duplicate_search": duplicates.method,
            "leakage": accuracy_without(
                result.y_test, result.y_pred, result.paths_test, duplicates.leaked_test
            ),
        }
    return doc


def report_files(
    result: TrainResult,
    *,
    example_paths: Mapping[tuple[str, str], Sequence[str]] | None = None,
    duplicates: Duplicates | None = None,
    spark: SparkSession | None = None,
    thumbnail_px: int | None = 96,
) -> dict[str, bytes]:
    """The evaluation report's files, ``{name: bytes}``: ``metrics.json``,
    ``confusion_matrix.csv``, ``confusion_matrix.png`` and ``report.html``.

    ``example_paths`` (``{(true, predicted): [path, ...]}``) are shown for the most-confused
    pairs instead of ``result``'s misclassified test images (:func:`picture_sets`).
    ``duplicates`` (:func:`pool3.duplicates.search.find_duplicates`) adds the
    ``"duplicates"`` list, their counts and the leakage-free accuracy to ``metrics.json``
    and a section to the page. The shown images are read again through ``spark``'s
    FileSystem (or ``pyarrow.fs``) as ``thumbnail_px`` thumbnails; None shows paths only.
    """
    metrics = result.metrics
    doc = metrics_doc(result, duplicates)
    run, leakage = doc["run"], doc.get("leakage")
    png = confusion_png(metrics["confusion_matrix"], metrics["labels"])
    html = render_html(
        metrics,
        run=run,
        png=png,
        examples=example_paths or {},
        sections=_sections(result, duplicates, spark, thumbnail_px, example_paths),
        notice=_notice(leakage),
    )
    return {
        "metrics.json": json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8"),
        "confusion_matrix.csv": confusion_frame(metrics).to_csv().encode("utf-8"),
        "confusion_matrix.png": png,
        "report.html": html.encode("utf-8"),
    }


def write_report(
    result: TrainResult,
    model_dir: str | os.PathLike[str],
    *,
    example_paths: Mapping[tuple[str, str], Sequence[str]] | None = None,
    duplicates: Duplicates | None = None,
    spark: SparkSession | None = None,
    thumbnail_px: int | None = 96,
) -> dict[str, str]:
    """Write :func:`report_files` into ``model_dir`` (a path or URI; created if absent),
    outside any commit: for notebooks and tests (``pool3 train`` commits them with the model).

    Returns ``{"metrics_json", "confusion_csv", "confusion_png", "report_html"}`` -> the
    written path. Raises :class:`OutputError` when the directory or a file cannot be written.
    """
    files = report_files(
        result,
        example_paths=example_paths,
        duplicates=duplicates,
        spark=spark,
        thumbnail_px=thumbnail_px,
    )
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
