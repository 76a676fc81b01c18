"""What a tracked ``pool3 train`` / ``pool3 featurize`` logs into its MLflow run.

train: the resolved config as params (secrets redacted, as in the run manifest); accuracy
with its 95% interval, macro/weighted precision, recall and F1, per-class precision/recall/F1,
duplicate and leakage counts, suspected label errors, the feature table's error and ignore
counts, passes and fit time as metrics; ``report.html``, ``metrics.json``, the confusion
matrix and the manifests as artifacts; the feature table as the run's input dataset (URI,
featurize run, rows, a digest of its manifest); the model (:mod:`pool3.tracking.flavor`),
registered and aliased when asked. featurize: its summary as metrics and its manifest.
Only the driver (or the Spark Connect client) logs: nothing here needs the JVM.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.data.dataset import Dataset

from pool3.config import Config
from pool3.model import ModelBundle
from pool3.tracking import flavor
from pool3.tracking.server import import_mlflow
from pool3.training.classifier import LinearModel

#: MLflow's limit on a param value's length
_PARAM_MAX = 6000
_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")


def config_params(config: Config) -> dict[str, str]:
    """``{"train.C": "1.0", ...}``: every setting, redacted by :meth:`Config.to_dict`."""
    out: dict[str, str] = {}
    for section, values in config.to_dict().items():
        for key, value in values.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            out[f"{section}.{key}"] = text[:_PARAM_MAX]
    return out


def metric_name(text: str) -> str:
    """A class name as part of a metric name (MLflow allows ``[0-9A-Za-z_-. /]``)."""
    return _UNSAFE.sub("_", text)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def train_metrics(doc: Mapping[str, Any], table_counts: Mapping[str, Any]) -> dict[str, float]:
    """The metrics of a training run from its ``metrics.json`` (``doc``) and the feature
    table manifest's ``counts`` (``table_counts``)."""
    out: dict[str, Any] = {}
    for key in ("accuracy", "n_test", "n_classes", "duplicate_cosine"):
        out[key] = doc.get(key)
    for avg in ("macro", "weighted"):
        for kind in ("precision", "recall", "f1"):
            out[f"{kind}_{avg}"] = doc.get(f"{kind}_{avg}")
    low, high = (doc.get("accuracy_ci95") or [None, None])[:2]
    out["accuracy_ci95_low"], out["accuracy_ci95_high"] = low, high
    for label, scores in (doc.get("per_class") or {}).items():
        for kind in ("precision", "recall", "f1", "support"):
            out[f"class.{metric_name(label)}.{kind}"] = scores.get(kind)
    for key, value in (doc.get("duplicate_counts") or {}).items():
        out[f"duplicates.{key}"] = value
    leakage = doc.get("leakage") or {}
    out["leaked_test_images"] = leakage.get("leaked_test_images", 0)
    if leakage.get("accuracy") is not None:
        out["accuracy_without_leaked"] = leakage["accuracy"]
    out["suspected_label_errors"] = len(doc.get("suspected_label_errors") or [])
    run = doc.get("run") or {}
    for key in ("train_images", "test_images", "rows_total", "rows_error", "rows_unlabelled"):
        out[f"rows.{key.removeprefix('rows_')}"] = run.get(key)
    out["C"], out["fit_seconds"] = run.get("C"), run.get("fit_seconds")
    for key, value in (run.get("fit") or {}).items():
        out[f"fit.{key}"] = value
    for key in ("errors", "ignored", "images", "reused"):
        out[f"features.{key}"] = table_counts.get(key)
    return {k: number for k, v in out.items() if (number := _number(v)) is not None}


class FeatureTable(Dataset):
    """A committed pool3 feature table as an MLflow input dataset: its URI, the featurize
    run that wrote it, its rows, and the sha256 of its ``_pool3_manifest.json`` as digest."""

    def __init__(self, uri: str, manifest_text: str, rows: int | None) -> None:
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        manifest = json.loads(manifest_text) if manifest_text else {}
        self._profile = {
            "num_rows": rows,
            "featurize_run_id": manifest.get("run_id"),
            "committed_at": manifest.get("committed_at"),
            "model_fingerprint": manifest.get("model_fingerprint"),
        }
        self._manifest_digest = hashlib.sha256(manifest_text.encode()).hexdigest()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(uri)
        super().__init__(source=source, name=uri.rstrip("/").rsplit("/", 1)[-1] or uri)

    def _compute_digest(self) -> str:
        return self._manifest_digest[:20]

    def to_dict(self) -> dict[str, str]:
        out = super().to_dict()
        out["profile"] = json.dumps(self._profile)
        return out

    @property
    def profile(self) -> dict[str, Any]:
        return self._profile

    @property
    def schema(self) -> None:
        return None


def _log_files(files: Mapping[str, bytes], artifact_path: str | None) -> None:
    mlflow = import_mlflow()
    with tempfile.TemporaryDirectory(prefix="pool3-mlflow-") as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        mlflow.log_artifacts(tmp, artifact_path=artifact_path)


def example_input() -> Any:
    """A one-row input example (a 16x16 PNG's bytes): portable, unlike a path."""
    import pandas as pd
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, format="PNG")
    return pd.DataFrame({"content": [buf.getvalue()]})


def log_model(
    config: Config, classifier: LinearModel, featurizer: ModelBundle, *, top_k: int
) -> dict[str, Any]:
    """Log the pool3 model in the active run, register it and set the alias where
    ``[mlflow]`` asks; returns what the summary shows (``model_uri``, ``registered``...)."""
    mlflow = import_mlflow()
    settings = config.mlflow
    name = settings.registered_model_name or None
    precision = config.model.precision
    if precision == "int8":
        precision = "float32"  # the flavor carries the float IR; int8 needs its calibration
    info = flavor.log_model(
        "model",
        classifier=classifier,
        featurizer=featurizer,
        registered_model_name=name,
        top_k=top_k,
        precision=precision,
        signature=flavor.signature(),
        input_example=example_input(),
    )
    out: dict[str, Any] = {"model_uri": info.model_uri}
    version = getattr(info, "registered_model_version", None)
    if name and version is not None:
        out["registered"] = f"{name} version {version}"
        out["registered_uri"] = f"models:/{name}/{version}"
        if settings.alias:
            mlflow.MlflowClient().set_registered_model_alias(name, settings.alias, version)
            out["registered_uri"] = f"models:/{name}@{settings.alias}"
    return out


def log_train(
    config: Config,
    *,
    doc: Mapping[str, Any],
    files: Mapping[str, bytes],
    classifier: LinearModel,
    featurizer: ModelBundle | None,
    table: tuple[str, str] | None,
    top_k: int,
) -> dict[str, Any]:
    """Log a training run into the active MLflow run (see the module docstring).

    ``files``: the report's and the run's files by name (``report.html``, ``metrics.json``,
    ``_pool3_manifest.json``...); ``table``: the feature table's URI and the text of its
    manifest, or None for a DataFrame; ``featurizer``: the IR to log the model with, or None
    (no model: ``mlflow.log_model = false``).
    """
    mlflow = import_mlflow()
    mlflow.log_params(config_params(config))
    counts: dict[str, Any] = {}
    if table is not None:
        uri, manifest_text = table
        counts = (json.loads(manifest_text) if manifest_text else {}).get("counts", {})
        rows = (doc.get("run") or {}).get("rows_total")
        mlflow.log_input(FeatureTable(uri, manifest_text, rows), context="training")
        files = {**files, "features_manifest.json": manifest_text.encode()}
    mlflow.log_metrics(train_metrics(doc, counts))
    mlflow.set_tag("pool3.solver", str((doc.get("run") or {}).get("estimator", "")))
    _log_files(files, "report")
    out: dict[str, Any] = {}
    if featurizer is not None:
        out = log_model(config, classifier, featurizer, top_k=top_k)
    run = mlflow.active_run()
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, **out}


def log_featurize(config: Config, summary: Mapping[str, Any], manifest_text: str) -> dict[str, Any]:
    """Log a featurize run: its config, its summary's figures as metrics, its manifest."""
    mlflow = import_mlflow()
    mlflow.log_params(config_params(config))
    figures = {k: n for k, v in summary.items() if (n := _number(v)) is not None}
    for reason, count in (summary.get("errors_by_reason") or {}).items():
        figures[f"errors.{metric_name(reason)}"] = float(count)
    mlflow.log_metrics(figures)
    files = {"_pool3_manifest.json": manifest_text.encode()} if manifest_text else {}
    files["summary.json"] = json.dumps(dict(summary), indent=2, default=str).encode()
    _log_files(files, "featurize")
    run = mlflow.active_run()
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id}
