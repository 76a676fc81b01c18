"""What a fit produced, the same for every solver: :class:`TrainResult` and its builder."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pool3.config import TrainParams
from pool3.duplicates.search import Duplicates
from pool3.training.classifier import LinearModel
from pool3.training.evaluation.metrics import metrics
from pool3.training.evaluation.quality import suspected_label_errors
from pool3.training.table.data import Split

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What training produced, for saving, reporting and quality gates.

    ``classifier`` is what gets saved; ``y_pred`` and ``scores_test`` come from it, so
    the report describes exactly the persisted model. ``scores_test`` has shape
    (n_test, len(classifier.classes)), column ``j`` scoring ``classifier.classes[j]``.
    ``labels`` lists every class in the data (the metrics' order); it equals
    ``classifier.classes`` unless ``stratify=False`` left a class out of the training set.
    ``suspects``: test (and, where the solver scored them, training) images whose label the
    classifier confidently disagrees with (:func:`.quality.suspected_label_errors`).
    ``rows``: the driver's feature array when a driver solver fitted, else None.
    ``duplicates``: the exact and near duplicates, where the fit searched them.
    """

    classifier: LinearModel
    estimator: Any
    metrics: dict[str, Any]
    labels: tuple[str, ...]
    y_test: np.ndarray
    y_pred: np.ndarray
    paths_test: np.ndarray
    scores_test: np.ndarray
    fit_seconds: float
    solver: str
    params: TrainParams
    fingerprint: str
    counts: dict[str, int]
    n_train: int
    n_test: int
    suspects: list[dict[str, Any]] = field(default_factory=list)
    rows: Split | None = None
    duplicates: Duplicates | None = None

    @property
    def c_search(self) -> dict[str, Any] | None:
        """How ``train.C = "auto"`` chose C (:meth:`.c_search.CSearch.as_dict`),
        kept in the model's meta; None when C was given."""
        found: dict[str, Any] | None = self.classifier.meta.get("C_search")
        return found


def evaluated(
    model: LinearModel,
    estimator: Any,
    *,
    labels: Sequence[str],
    y_test: np.ndarray,
    y_pred: np.ndarray,
    paths_test: np.ndarray,
    scores_test: np.ndarray,
    fit_seconds: float,
    params: TrainParams,
    counts: Mapping[str, int],
    n_train: int,
    train_suspects: Sequence[dict[str, Any]] = (),
    rows: Split | None = None,
) -> TrainResult:
    """The :class:`TrainResult` of a fitted ``model``, with its metrics over every class.

    Shared by the driver (scikit-learn) and Spark MLlib paths, so both report alike; the
    solver's name is ``model.meta["estimator"]``; ``train_suspects`` are the training images
    the solver found mislabelled-looking (the test ones are found here).
    """
    solver = str(model.meta["estimator"])
    # Which images were held out, as one digest: equal for every solver on the same table.
    listed = "\n".join(sorted(str(p) for p in paths_test)).encode()
    model.meta.setdefault("split", {})["test_paths_sha256"] = hashlib.sha256(listed).hexdigest()
    result_metrics = metrics(y_test, y_pred, tuple(labels))
    log.info(
        "fit %s in %.2fs; test accuracy %.1f%%",
        solver,
        fit_seconds,
        100 * result_metrics["accuracy"],
    )
    return TrainResult(
        classifier=model,
        estimator=estimator,
        metrics=result_metrics,
        labels=tuple(labels),
        y_test=y_test,
        y_pred=y_pred,
        paths_test=paths_test,
        scores_test=scores_test,
        fit_seconds=fit_seconds,
        solver=solver,
        params=params,
        fingerprint=model.fingerprint,
        counts=dict(counts),
        n_train=n_train,
        n_test=len(y_test),
        suspects=[
            *suspected_label_errors(paths_test, y_test, scores_test, model.classes, split="test"),
            *train_suspects,
        ],
        rows=rows,
    )
