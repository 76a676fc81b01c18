"""The commands' side of tracking: what ``pool3 train --mlflow`` and ``pool3 featurize
--mlflow`` log once their output is committed, read back through the storage layer (any URI,
on Spark Classic and over Spark Connect), and the API's :func:`track_model`.

A run is logged after the commit: the MLflow run describes an output that exists. Where the
logging fails, the output stays committed and the MLflow run ends FAILED; the error says both.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from pool3.config import Config
from pool3.errors import ModelError, OutputError, Pool3Error
from pool3.extraction.shipping import openvino_bundle
from pool3.model import ModelBundle, load_bundle
from pool3.storage.fs import exists, join, read_text
from pool3.storage.outputs import MANIFEST_NAME
from pool3.tracking.runs import log_featurize, log_train
from pool3.tracking.server import connect, reason, tracked_run
from pool3.training.classifier import LinearModel

log = logging.getLogger(__name__)


def featurizer_ir(config: Config, classifier: LinearModel) -> ModelBundle:
    """``model.source`` as OpenVINO IR (cached), which must be what ``classifier`` was
    trained on: the model MLflow serves featurizes images itself."""
    home = config.model.home or None
    bundle = load_bundle(config.model.source, home=home)
    if bundle.fingerprint != classifier.fingerprint:
        raise ModelError(
            f"the classifier was trained on features {classifier.fingerprint}, but "
            f"model.source={config.model.source!r} is {bundle.fingerprint}: the MLflow model "
            "needs the featurizer of its features; set model.source (--model-source) to it, "
            "or --set mlflow.log_model=false"
        )
    return openvino_bundle(bundle, None, home=home)


def _manifest_text(spark: SparkSession | None, folder: str) -> str:
    path = join(folder, MANIFEST_NAME)
    return read_text(spark, path) if exists(spark, path) else ""


def _failed(what: str, committed: str | None, err: Exception) -> OutputError:
    if committed is None:  # the API: nothing was committed
        return OutputError(
            f"logging {what} to MLflow failed ({reason(err)}); its MLflow run is marked FAILED"
        )
    return OutputError(
        f"{what} is committed in {committed}, but logging it to MLflow failed ({reason(err)}); "
        "its MLflow run is marked FAILED: rerun with --mode overwrite once the tracking "
        "server works, or --set mlflow.required=false"
    )


def _log_training(
    config: Config,
    *,
    command: str,
    doc: Mapping[str, Any],
    files: Mapping[str, bytes],
    classifier: LinearModel,
    table: tuple[str, str] | None,
    committed: str | None,
) -> dict[str, Any]:
    """:func:`pool3.tracking.runs.log_train` in its run; a failure names what was committed."""
    ir = featurizer_ir(config, classifier) if config.mlflow.log_model else None
    try:
        with tracked_run(config, command=command):
            return log_train(
                config,
                doc=doc,
                files=files,
                classifier=classifier,
                featurizer=ir,
                table=table,
                top_k=config.classify.top_k,
            )
    except Pool3Error:
        raise
    except Exception as err:
        raise _failed("the model", committed, err) from err


def track_train(
    spark: SparkSession,
    config: Config,
    *,
    doc: Mapping[str, Any],
    files: Mapping[str, bytes],
    classifier: LinearModel,
    model_dir: str,
    features_path: str,
) -> dict[str, Any]:
    """Log a committed ``pool3 train`` run (``doc``: its ``metrics.json``; ``files``: the
    report's files); returns the run's ids and the model's URIs for the summary."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    table = (features_path, _manifest_text(spark, features_path))
    files = {**files, MANIFEST_NAME: _manifest_text(spark, model_dir).encode()}
    return _log_training(
        config,
        command="train",
        doc=doc,
        files=files,
        classifier=classifier,
        table=table,
        committed=model_dir,
    )


def track_featurize(
    spark: SparkSession, config: Config, summary: Mapping[str, Any], output_path: str
) -> dict[str, Any]:
    """Log a committed ``pool3 featurize`` run: its summary and manifest."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        with tracked_run(config, command="featurize"):
            return log_featurize(config, summary, _manifest_text(spark, output_path))
    except Exception as err:
        raise _failed("the feature table", output_path, err) from err


def feature_table_of(spark: SparkSession, df: DataFrame) -> tuple[str, str] | None:
    """The committed feature table ``df`` was read from (its folder and manifest text), or
    None for a DataFrame made otherwise. Asks Spark for the input files only: no job."""
    try:
        files = df.inputFiles()
    except Exception:  # a DataFrame without files (createDataFrame, a UDF's output)
        return None
    folders = {f.rsplit("/", 1)[0] for f in files}
    if len(folders) != 1:
        return None
    (folder,) = folders
    text = _manifest_text(spark, folder)
    return (folder, text) if text else None


def track_model(
    spark: SparkSession,
    config: Config,
    *,
    doc: Mapping[str, Any],
    files: Mapping[str, bytes],
    classifier: LinearModel,
    features: DataFrame | None = None,
    log_model: bool = True,
    **settings: str | None,
) -> dict[str, Any]:
    """The API's :meth:`pool3.Pool3Model.log_mlflow`: log a model trained (or loaded) in
    this process into the active MLflow run, ``MLFLOW_RUN_ID``'s, or a new one; returns the
    run's ids and the model's URIs, or ``{}`` where the tracking server cannot be reached and
    ``mlflow.required`` is false. ``files``: the report's (only ``metrics.json`` is written
    from ``doc`` where it is empty); ``settings``: ``[mlflow]`` values that win over
    ``config``'s (``registered_model_name``, ``alias``, ``experiment``, ``run_name``)."""
    given: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    given.update(enabled=True, log_model=log_model)
    config = replace(config, mlflow=replace(config.mlflow, **given))
    if not files:
        files = {"metrics.json": json.dumps(dict(doc), indent=2, default=str).encode()}
    if connect(config) is None:
        return {}
    table = feature_table_of(spark, features) if features is not None else None
    return _log_training(
        config,
        command="api",
        doc=doc,
        files=files,
        classifier=classifier,
        table=table,
        committed=None,
    )
