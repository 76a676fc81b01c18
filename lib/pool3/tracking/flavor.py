"""The ``pool3`` MLflow flavor: featurizer and classifier as one model that scores images.

A logged model holds, under ``data/``, the classifier (``classifier.npz`` + ``classifier.json``,
as ``pool3 train`` writes them) and the featurizer as OpenVINO IR (``featurizer.xml``,
``featurizer.bin``, ``featurizer.json``): nothing is downloaded or converted when it loads,
and nothing is unpickled. Its ``python_function`` flavor (``loader_module`` this module) takes
a pandas DataFrame of image paths/URIs (``path``) or image bytes (``content``) and returns one
row per input row: ``predicted``, ``score``, ``top_labels``, ``top_scores``, ``error`` (a row
that cannot be read or decoded gets its ``error``, never an exception). The same kernel as
``pool3 classify`` computes it, so ``mlflow.pyfunc.load_model(uri).predict(df)`` and
``mlflow.pyfunc.spark_udf(spark, uri)`` give its predictions.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pool3.errors import ModelError
from pool3.extraction.batching import auto_batch_size
from pool3.extraction.kernel import MB, BatchStats, WorkerOptions, featurize_frame
from pool3.extraction.paths import files_frame
from pool3.model import Featurizer, ModelBundle, featurizer_from_bundle
from pool3.model.featurizer import resolve_precision
from pool3.scoring.predict import PREDICTED, predict_columns
from pool3.training.classifier import LinearModel, model_files
from pool3.training.classifier import load_model as load_classifier
from pool3.version import __version__

log = logging.getLogger(__name__)

FLAVOR_NAME = "pool3"
DATA = "data"
CLASSIFIER = "classifier"
FEATURIZER = "featurizer"
#: what :meth:`Pool3Pyfunc.predict` returns, in order
OUTPUT_COLUMNS = (*PREDICTED, "error")


def signature() -> Any:
    """Inputs ``path`` (string) and/or ``content`` (binary), both optional; the outputs of
    :data:`OUTPUT_COLUMNS` (scores as float32, like ``pool3 classify``'s table)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    inputs = Schema(
        [ColSpec("string", "path", required=False), ColSpec("binary", "content", required=False)]
    )
    outputs = Schema(
        [
            ColSpec("string", "predicted"),
            ColSpec("float", "score"),
            ColSpec(Array("string"), "top_labels"),
            ColSpec(Array("float"), "top_scores"),
            ColSpec("string", "error"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def _write_featurizer(where: Path, ir: ModelBundle) -> None:
    if ir.kind != "openvino-ir":
        raise ValueError(f"the pool3 flavor stores OpenVINO IR, not a {ir.kind} bundle")
    where.mkdir(parents=True, exist_ok=True)
    (where / "featurizer.xml").write_bytes(ir.extra["xml"])
    (where / "featurizer.bin").write_bytes(ir.payload)
    meta = {k: v for k, v in ir.extra.items() if k != "xml"}
    doc = {
        "fingerprint": ir.fingerprint,
        "description": ir.description,
        "preprocessing": ir.preprocessing,
        "extra": meta,
    }
    (where / "featurizer.json").write_text(json.dumps(doc, indent=2, sort_keys=True))


def _read_featurizer(where: Path) -> ModelBundle:
    try:
        doc = json.loads((where / "featurizer.json").read_text())
        xml = (where / "featurizer.xml").read_bytes()
        weights = (where / "featurizer.bin").read_bytes()
    except (OSError, ValueError) as err:
        raise ModelError(
            f"the pool3 model in {where.parent} has no readable featurizer ({err}); log it "
            "again with pool3 train --mlflow"
        ) from err
    return ModelBundle(
        kind="openvino-ir",
        payload=weights,
        fingerprint=doc["fingerprint"],
        description=doc["description"],
        preprocessing=doc["preprocessing"],
        extra={**doc["extra"], "xml": xml},
    )


def save_model(
    path: str | os.PathLike[str],
    *,
    classifier: LinearModel,
    featurizer: ModelBundle,
    top_k: int = 3,
    precision: str = "auto",
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write a pool3 MLflow model into the new folder ``path`` (see the module docstring).

    ``featurizer`` is the classifier's feature model as OpenVINO IR
    (:func:`pool3.extraction.shipping.openvino_bundle`); its fingerprint must be the one the
    classifier was trained on. ``precision``: the featurizer's (``auto``: bfloat16 where the
    scoring CPU runs it natively, as ``pool3 classify`` chooses on the same machine).
    """
    from mlflow.models import Model
    from mlflow.models.utils import _save_example
    from mlflow.pyfunc import add_to_model

    if featurizer.fingerprint != classifier.fingerprint:
        raise ModelError(
            f"the classifier was trained on features {classifier.fingerprint}, the featurizer "
            f"is {featurizer.fingerprint}: log it with the model source it was trained with "
            "(model.source)"
        )
    root = Path(path)
    root.mkdir(parents=True)
    data = root / DATA
    (data / CLASSIFIER).mkdir(parents=True)
    for name, blob in model_files(classifier).items():
        (data / CLASSIFIER / name).write_bytes(blob)
    _write_featurizer(data / FEATURIZER, featurizer)
    model = mlflow_model if mlflow_model is not None else Model()
    if signature is not None:
        model.signature = signature
    if input_example is not None:
        _save_example(model, input_example, str(root))
    if metadata:
        model.metadata = {**(model.metadata or {}), **metadata}
    settings = {"top_k": int(top_k), "precision": precision}
    (data / "pool3.json").write_text(json.dumps(settings, indent=2))
    model.add_flavor(
        FLAVOR_NAME,
        pool3_version=__version__,
        data=DATA,
        fingerprint=classifier.fingerprint,
        classes=list(classifier.classes),
        **settings,
    )
    add_to_model(
        model,
        loader_module=__name__,
        data=DATA,
        python_env=None,
        model_config=None,
    )
    model.save(str(root / "MLmodel"))
    requirements = pip_requirements or default_requirements()
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n")


def default_requirements() -> list[str]:
    """pool3 and what its scoring imports, at this process's versions."""
    from importlib.metadata import PackageNotFoundError, version

    out = [f"pool3=={__version__}"]
    for name in ("mlflow", "openvino", "numpy", "pandas", "pyarrow", "pillow"):
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


def log_model(
    name: str,
    *,
    classifier: LinearModel,
    featurizer: ModelBundle,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Log a pool3 model in the active MLflow run (:func:`save_model`'s arguments); returns
    MLflow's ``ModelInfo``. With ``registered_model_name`` it is registered too."""
    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name=name,
        flavor=sys.modules[__name__],
        registered_model_name=registered_model_name,
        classifier=classifier,
        featurizer=featurizer,
        **kwargs,
    )


class Pool3Pyfunc:
    """The ``python_function`` of a pool3 model: images in, predictions out (module docstring)."""

    def __init__(self, data_path: str | os.PathLike[str]) -> None:
        data = Path(data_path)
        settings = json.loads((data / "pool3.json").read_text())
        self.classifier = load_classifier(str(data / CLASSIFIER))
        bundle = _read_featurizer(data / FEATURIZER)
        if bundle.fingerprint != self.classifier.fingerprint:
            raise ModelError(
                f"the pool3 model in {data.parent} pairs a classifier of features "
                f"{self.classifier.fingerprint} with the featurizer {bundle.fingerprint}"
            )
        self.top_k = int(settings["top_k"])
        self.precision = resolve_precision(settings["precision"])
        self._bundle: ModelBundle | None = bundle
        self._featurizer: Featurizer | None = None
        memory = 2048
        self.options = WorkerOptions(
            fingerprint=bundle.fingerprint,
            runtime="openvino",
            precision=self.precision,
            batch_size=auto_batch_size(memory, runtime="openvino", precision=self.precision),
            worker_memory_mb=memory,
            max_file_bytes=64 * MB,
            label_mode="none",
            prefetch=False,
        )

    def featurizer(self) -> Featurizer:
        """The OpenVINO featurizer, compiled on first use (~1 s)."""
        if self._featurizer is None:
            assert self._bundle is not None
            self._featurizer = featurizer_from_bundle(self._bundle, precision=self.precision)
            self._bundle = None  # the compiled model holds the weights now
        return self._featurizer

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """``predicted, score, top_labels, top_scores, error`` for each row of
        ``model_input`` (a DataFrame with ``path`` and/or ``content``, or a list of paths)."""
        frame = _as_frame(model_input)
        if "path" not in frame.columns:
            frame = frame.assign(path=[""] * len(frame))
        files = files_frame(frame, "path", self.options.max_file_bytes)
        rows = featurize_frame(files, self.featurizer(), self.options, BatchStats())
        ok = [i for i, vec in enumerate(rows["features"]) if vec is not None]
        out = pd.DataFrame(predict_columns(rows["features"], ok, self.classifier, self.top_k))
        out["score"] = out["score"].astype("float32")
        out["top_scores"] = [
            None if s is None else np.asarray(s, dtype=np.float32) for s in out["top_scores"]
        ]
        out["error"] = rows["error"].to_numpy()
        return out[list(OUTPUT_COLUMNS)]


def _as_frame(model_input: Any) -> pd.DataFrame:
    if isinstance(model_input, pd.DataFrame):
        frame = model_input
    elif isinstance(model_input, pd.Series):
        frame = model_input.to_frame(name=model_input.name or "path")
    elif isinstance(model_input, list | tuple) and all(isinstance(p, str) for p in model_input):
        frame = pd.DataFrame({"path": list(model_input)})
    else:
        frame = pd.DataFrame(model_input)
    if "path" not in frame.columns and "content" not in frame.columns:
        raise ModelError(
            "a pool3 model scores a DataFrame with a 'path' column (image paths or URIs) "
            f"and/or a 'content' column (image bytes); it got columns {list(frame.columns)}"
        )
    return frame.reset_index(drop=True)


def _load_pyfunc(data_path: str) -> Pool3Pyfunc:
    """MLflow's hook: the ``python_function`` of the model whose ``data`` is ``data_path``."""
    return Pool3Pyfunc(data_path)


def load_model(model_uri: str, dst_path: str | None = None) -> Pool3Pyfunc:
    """The pool3 model at an MLflow URI (``models:/NAME@ALIAS``, ``runs:/ID/model``...)."""
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    local = _download_artifact_from_uri(model_uri, output_path=dst_path)
    return Pool3Pyfunc(Path(local) / DATA)
