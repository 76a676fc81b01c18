"""A fitted linear classifier as plain arrays, saved without pickle.

``classifier.npz`` holds ``coef``, ``intercept`` and ``classes`` (a unicode array), so
it loads with ``np.load(..., allow_pickle=False)``: a tampered model directory cannot
run code. ``classifier.json`` holds what a person (or the scorer) needs to trust it:
the feature-model fingerprint, the classes, library versions and how it was trained.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from pool3.errors import ConfigError, ModelError, OutputError
from pool3.storage import fs
from pool3.version import __version__

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
NPZ_NAME = "classifier.npz"
JSON_NAME = "classifier.json"
_RETRAIN = "re-run `pool3 train` to write it again"
#: Rows scored at once: their float64 copy is 8192 x 2048 x 8 bytes = 128 MB at most.
_SCORE_BLOCK = 8192


@dataclass(frozen=True, eq=False)
class LinearModel:
    """Linear one-vs-rest (or binary) classifier: ``scores = X @ coef.T + intercept``.

    Attributes
    ----------
    coef : ndarray of shape (n_classes, n_features) or (1, n_features), float32
        One row for a binary problem (the score of ``classes[1]``), as in scikit-learn.
    intercept : ndarray of shape (n_classes,) or (1,), float32
    classes : tuple of str
        Sorted as in the estimator's ``classes_``.
    fingerprint : str
        Fingerprint of the feature model whose features this was trained on.
    meta : dict
        JSON-ready training details (sizes, split, seed, params).
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: tuple[str, ...]
    fingerprint: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        coef = np.array(self.coef, dtype=np.float32, order="C")
        intercept = np.array(self.intercept, dtype=np.float32).reshape(-1)
        classes = tuple(str(c) for c in self.classes)
        expected_rows = 1 if len(classes) == 2 else len(classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ModelError(
                f"a classifier needs 2+ distinct classes, got {classes!r}; {_RETRAIN}."
            )
        if coef.ndim != 2 or coef.shape[0] not in (expected_rows, len(classes)):
            raise ModelError(
                f"coef has shape {coef.shape}, expected ({expected_rows}, n_features) for "
                f"{len(classes)} classes; {_RETRAIN}."
            )
        if intercept.shape != (coef.shape[0],):
            raise ModelError(
                f"intercept has shape {intercept.shape}, expected ({coef.shape[0]},); {_RETRAIN}."
            )
        coef.setflags(write=False)
        intercept.setflags(write=False)
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "intercept", intercept)
        object.__setattr__(self, "classes", classes)

    @property
    def n_features(self) -> int:
        """Length of the feature vectors this model scores."""
        return int(self.coef.shape[1])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores per class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), float

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            Column ``j`` scores ``classes[j]``. For a binary model the sklearn score ``s``
            becomes ``[-s, s]``, so the argmax is sklearn's prediction.
        """
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ModelError(
                f"features have shape {X.shape}, the classifier expects (n, {self.n_features}); "
                "score features made by the same feature model as the training set."
            )
        # float64 accumulation keeps scores within ~1e-7 of scikit-learn's own; in row
        # blocks, so that a float32 table is never copied whole to float64.
        coef = self.coef.T.astype(np.float64)
        scores = np.empty((len(X), coef.shape[1]))
        for start in range(0, len(X), _SCORE_BLOCK):
            block = X[start : start + _SCORE_BLOCK].astype(np.float64, copy=False)
            scores[start : start + _SCORE_BLOCK] = block @ coef
        scores += self.intercept.astype(np.float64)
        if self.coef.shape[0] == 1:
            scores = np.hstack([-scores, scores])
        return scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels, ndarray of shape (n_samples,), str."""
        return np.asarray(self.classes)[np.argmax(self.decision_function(X), axis=1)]

    def top_k(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best classes per row, best first.

        Returns
        -------
        labels : ndarray of shape (n_samples, min(k, n_classes)), str
        scores : ndarray of shape (n_samples, min(k, n_classes)), float64
        """
        if k < 1:
            raise ConfigError(f"top_k needs k >= 1, got k={k}; ask for at least one class.")
        scores = self.decision_function(X)
        k = min(k, len(self.classes))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.asarray(self.classes)[order], np.take_along_axis(scores, order, axis=1)

    @classmethod
    def from_sklearn(
        cls, estimator: Any, *, fingerprint: str, meta: dict[str, Any] | None = None
    ) -> LinearModel:
        """Copy a fitted ``LinearSVC``/``SGDClassifier`` or ``OneVsRestClassifier`` of them."""
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise ModelError(f"{type(estimator).__name__} is not fitted; fit it before saving.")
        if hasattr(estimator, "coef_"):
            coef, intercept = estimator.coef_, estimator.intercept_
        elif hasattr(estimator, "estimators_"):
            parts = estimator.estimators_
            if not all(hasattr(e, "coef_") for e in parts):
                raise ModelError(
                    "a one-vs-rest member has no coef_ (a class seen in every or no training "
                    "row); train with at least one image of every class."
                )
            coef = np.vstack([e.coef_ for e in parts])
            intercept = np.concatenate([np.ravel(e.intercept_) for e in parts])
        else:
            raise ModelError(
                f"cannot save a {type(estimator).__name__}: expected a linear classifier "
                "with coef_ and intercept_."
            )
        return cls(coef, intercept, tuple(classes), fingerprint, dict(meta or {}))


def _versions() -> dict[str, str]:
    import sklearn

    return {"pool3": __version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__}


def model_files(model: LinearModel) -> dict[str, bytes]:
    """``{"classifier.npz": ..., "classifier.json": ...}``: the files of a saved model."""
    buf = io.BytesIO()
    np.savez(
        buf,
        coef=model.coef,
        intercept=model.intercept,
        classes=np.asarray(model.classes, dtype=np.str_),
    )
    npz = buf.getvalue()
    doc = {
        "format_version": FORMAT_VERSION,
        "fingerprint": model.fingerprint,
        "classes": list(model.classes),
        "n_features": model.n_features,
        "coef_shape": list(model.coef.shape),
        "npz_sha256": hashlib.sha256(npz).hexdigest(),
        "versions": _versions(),
        "meta": model.meta,
    }
    try:
        text = json.dumps(doc, indent=2, sort_keys=True)
    except TypeError as err:
        raise ModelError(
            f"classifier meta is not JSON-serialisable: {err}; pass plain types."
        ) from err
    return {NPZ_NAME: npz, JSON_NAME: text.encode("utf-8")}


def save_model(
    model: LinearModel, model_dir: str | os.PathLike[str], *, spark: SparkSession | None = None
) -> str:
    """Write the model's files into ``model_dir`` (a path or URI; created if absent), outside
    any commit: for tests and notebooks; ``pool3 train`` commits them with its report.

    Returns the directory. Raises :class:`OutputError` if it cannot be written.
    """
    try:
        fs.write_files(spark, os.fspath(model_dir), model_files(model))
    except fs.FS_ERRORS as err:
        raise OutputError(
            f"cannot write the classifier to {model_dir}: {fs.why(err)}; check the path."
        ) from err
    log.info("saved classifier (%d classes) to %s", len(model.classes), model_dir)
    return os.fspath(model_dir)


def _read(where: str, name: str, spark: SparkSession | None) -> bytes:
    try:
        return fs.read_bytes(spark, fs.join(where, name))
    except fs.FS_ERRORS as err:
        raise ModelError(
            f"{fs.join(where, name)} not found or unreadable ({fs.why(err)}); {_RETRAIN} into this "
            "model directory."
        ) from err


def _parse_json(raw: bytes, path: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path} is unreadable or not JSON ({err}); {_RETRAIN}.") from err
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
        got = doc.get("format_version") if isinstance(doc, dict) else type(doc).__name__
        raise ModelError(
            f"{path} has format_version {got!r}, expected {FORMAT_VERSION}; {_RETRAIN} "
            f"with pool3 {__version__}."
        )
    for key, kind in (("fingerprint", str), ("classes", list), ("npz_sha256", str)):
        if not isinstance(doc.get(key), kind):
            raise ModelError(f"{path}: {key!r} missing or not a {kind.__name__}; {_RETRAIN}.")
    return doc


def load_model(
    model_dir: str | os.PathLike[str], *, spark: SparkSession | None = None
) -> LinearModel:
    """Load a classifier written by :func:`save_model` or ``pool3 train``, never unpickling
    anything. ``model_dir`` is a path or URI, read through ``pyarrow.fs``
    (:mod:`pool3.storage.fs`; a path without scheme is on ``spark``'s ``fs.defaultFS``).

    Raises
    ------
    ModelError
        Missing file, corrupt or tampered ``.npz`` (incl. pickled object arrays), a JSON
        that does not describe the arrays. The message names the file.
    """
    where = os.fspath(model_dir)
    doc = _parse_json(_read(where, JSON_NAME, spark), fs.join(where, JSON_NAME))
    npz_path = fs.join(where, NPZ_NAME)
    raw = _read(where, NPZ_NAME, spark)
    if hashlib.sha256(raw).hexdigest() != doc["npz_sha256"]:
        raise ModelError(
            f"{npz_path} does not match the checksum in {JSON_NAME} (changed or from another "
            f"run); {_RETRAIN}."
        )
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            coef, intercept, classes = npz["coef"], npz["intercept"], npz["classes"]
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ModelError(
            f"{npz_path} is corrupt or not a pool3 classifier ({err}); {_RETRAIN}."
        ) from err
    if classes.dtype.kind != "U" or [str(c) for c in classes] != doc["classes"]:
        raise ModelError(f"{npz_path} classes disagree with {JSON_NAME}; {_RETRAIN}.")
    model = LinearModel(
        coef, intercept, tuple(doc["classes"]), doc["fingerprint"], doc.get("meta") or {}
    )
    if model.n_features != doc.get("n_features"):
        raise ModelError(
            f"{npz_path} has {model.n_features} features, {JSON_NAME} says "
            f"{doc.get('n_features')}; {_RETRAIN}."
        )
    return model
