"""``pool3.train`` / ``pool3.load_model``: the SVM on a feature DataFrame, and the trained
model as an object that scores DataFrames, saves itself and writes its report.

The same steps as ``pool3 train`` (:func:`pool3.training.fit.train_table`: the table's rules,
the solver, the duplicate search; then the report's metrics), without its run lifecycle:
nothing is committed, no lock is taken, nothing calls ``sys.exit``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from pool3.api.extract import api_config, featurize
from pool3.config import Config
from pool3.connect import ship_code
from pool3.duplicates.search import Duplicates
from pool3.errors import InputError
from pool3.images.labels import labels_for_paths, parse_label_mode
from pool3.report.write import metrics_doc, report_files, write_report
from pool3.scoring.predict import PREDICTED, predict_columns
from pool3.storage.schemas import PREDICTIONS_SCHEMA
from pool3.training.classifier import LinearModel, save_model
from pool3.training.classifier import load_model as load_classifier
from pool3.training.evaluation.result import TrainResult
from pool3.training.fit import train_table

log = logging.getLogger(__name__)


@dataclass
class Pool3Model:
    """A trained pool3 classifier (one-vs-rest linear SVM over pool_3 features).

    Attributes
    ----------
    classifier : LinearModel
        Coefficients, intercepts, classes and the feature model's fingerprint.
    metrics : dict
        What ``metrics.json`` holds (accuracy, per-class scores, confusion matrix, the run's
        sizes, duplicates...); empty for a model loaded without its report.
    result : TrainResult or None
        The training run (test predictions and scores) when trained in this process.
    """

    classifier: LinearModel
    metrics: dict[str, Any] = field(default_factory=dict)
    result: TrainResult | None = field(default=None, repr=False)
    duplicates: Duplicates | None = field(default=None, repr=False)
    top_k: int = 5
    #: what :meth:`log_mlflow` logged (``run_id``, ``model_uri``...), when it did
    tracked: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    def transform(
        self, df: DataFrame, *, features_col: str = "features", path_col: str = "path"
    ) -> DataFrame:
        """``df`` with ``predicted``, ``score``, ``top_labels``, ``top_scores`` (and
        ``error`` where ``df`` has none) added, one row per input row.

        ``df`` holds features (a feature table, or :func:`pool3.featurize`'s output); a
        DataFrame of images without ``features_col`` is featurized first. Rows without
        features, and rows made by another feature model than the classifier's, get null
        predictions and an ``error`` saying why.
        """
        ship_code(df.sparkSession)
        if features_col not in df.columns:
            df = featurize(df, path_col=path_col)
        model, top_k = self.classifier, self.top_k
        has_error, has_model = "error" in df.columns, "model" in df.columns
        added = [f for f in PREDICTIONS_SCHEMA.fields if f.name in PREDICTED]
        fields = [*df.schema.fields, *added]
        if not has_error:
            fields.append(StructField("error", StringType(), True))

        def score(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for frame in frames:
                yield with_predictions(frame, model, top_k, features_col, has_error, has_model)

        return df.mapInPandas(score, StructType(fields))

    def save(self, uri: str, *, spark: SparkSession | None = None) -> str:
        """Write the classifier (``classifier.npz`` + ``classifier.json``) into ``uri``;
        :func:`load_model` reads it back, as does ``pool3 classify --model``."""
        return save_model(self.classifier, uri, spark=spark)

    def write_report(
        self, uri: str, *, spark: SparkSession | None = None, thumbnail_px: int | None = None
    ) -> dict[str, str]:
        """Write ``metrics.json``, the confusion matrix and ``report.html`` into ``uri``;
        only for a model trained in this process (the report needs its test predictions).
        ``thumbnail_px`` shows the images as thumbnails read again (None: paths only)."""
        if self.result is None:
            raise InputError(
                "this model was loaded, not trained here: its report is in the folder it was "
                "trained into (pool3 train writes it there)"
            )
        return write_report(
            self.result,
            uri,
            duplicates=self.duplicates,
            spark=spark,
            thumbnail_px=thumbnail_px,
        )

    def log_mlflow(
        self,
        *,
        features: DataFrame | None = None,
        registered_model_name: str | None = None,
        alias: str | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        log_model: bool = True,
        config: Config | None = None,
    ) -> dict[str, Any]:
        """Log this model to MLflow (README, "MLflow"): into the active run, ``MLFLOW_RUN_ID``'s,
        or a new one in ``experiment``. Params, metrics and (for a model trained here) the
        report as ``pool3 train --mlflow`` logs them; ``features``: the feature table
        it was trained on (logged as the run's input when it is a committed table); with
        ``log_model`` the model MLflow serves (images in, predictions out), registered as
        ``registered_model_name`` with ``alias`` where given.

        Returns ``run_id``, ``experiment_id``, ``model_uri`` (and ``registered_uri``), or
        ``{}`` where the server cannot be reached and ``mlflow.required`` is false.
        """
        from pool3.tracking.track import track_model

        files = self.result and report_files(
            self.result, duplicates=self.duplicates, thumbnail_px=None
        )
        spark = features.sparkSession if features is not None else SparkSession.active()
        return track_model(
            spark,
            api_config(config),
            doc=self.metrics,
            files=files or {},
            classifier=self.classifier,
            features=features,
            registered_model_name=registered_model_name,
            alias=alias,
            experiment=experiment,
            run_name=run_name,
            log_model=log_model,
        )


def with_predictions(
    frame: pd.DataFrame,
    model: LinearModel,
    top_k: int,
    features_col: str,
    has_error: bool,
    has_model: bool,
) -> pd.DataFrame:
    """``frame`` with the prediction columns of its rows (see :meth:`Pool3Model.transform`)."""
    errors = list(frame["error"]) if has_error else [None] * len(frame)
    ok = []
    for i, vec in enumerate(frame[features_col]):
        if vec is None:
            errors[i] = errors[i] or f"no features: {features_col} is null"
        elif has_model and frame["model"].iat[i] != model.fingerprint:
            errors[i] = (
                f"model: features of {frame['model'].iat[i]}, the classifier was trained on "
                f"{model.fingerprint}"
            )
        else:
            ok.append(i)
    frame = frame.assign(**predict_columns(frame[features_col], ok, model, top_k))
    frame["score"] = pd.array(frame["score"], dtype="Float32")
    frame["error"] = errors
    return frame


def train(
    features_df: DataFrame,
    *,
    label_col: str = "label",
    C: float | str = 1.0,
    split: str = "content",
    solver: str = "auto",
    seed: int = 42,
    test_size: float = 0.2,
    stratify: bool = True,
    duplicates: bool = True,
    mlflow: bool = False,
    config: Config | None = None,
) -> Pool3Model:
    """Fit the linear SVM on a feature DataFrame and evaluate it on a held-out split.

    Parameters
    ----------
    features_df : DataFrame
        Columns ``path``, ``features`` (2048 floats), ``model``, ``error``, ``sha256`` and
        ``label_col``: a feature table (``spark.read.parquet`` of ``pool3 featurize``'s
        output; read from its Parquet files directly) or :func:`pool3.featurize`'s output
        with labels (:func:`with_labels`).
    label_col : str
        The column of class names; rows with a null or blank label are not used.
    C, split, solver, seed, test_size, stratify
        As ``train.*`` (README, "Training"): ``C="auto"`` cross-validates it; ``split`` is
        ``"content"`` (sha256-keyed, duplicates never straddle) or ``"sklearn"``;
        ``solver="auto"`` fits on the driver while the features fit there, else on the
        executors.
    duplicates : bool
        Search exact and near duplicates (in :attr:`Pool3Model.metrics`).
    mlflow : bool
        Log the run to MLflow (:meth:`Pool3Model.log_mlflow`, with the ``[mlflow]`` settings
        of ``config``); ``config.mlflow.enabled`` does the same.
    config : Config, optional
        Further settings (``train.max_collect_mb``, ``report.duplicate_cosine``,
        ``mlflow.registered_model_name``...).

    Returns
    -------
    Pool3Model
        With ``.metrics`` (as ``metrics.json``), ``.transform``, ``.save`` and
        ``.write_report``.
    """
    if label_col not in features_df.columns:
        raise InputError(
            f"the DataFrame has no label column {label_col!r} (columns: "
            f"{', '.join(features_df.columns)}); pass label_col=, or add labels with "
            "pool3.with_labels"
        )
    cfg = api_config(
        config,
        C=C,
        split=split,
        solver=solver,
        seed=seed,
        test_size=test_size,
        stratify=stratify,
    )
    cfg = replace(cfg, report=replace(cfg.report, duplicates=duplicates))
    ship_code(features_df.sparkSession)
    table = features_df
    if label_col != "label":
        table = table.drop("label").withColumnRenamed(label_col, "label")
    result = train_table(table, cfg)
    found = result.duplicates
    model = Pool3Model(
        result.classifier,
        metrics=metrics_doc(result, found),
        result=result,
        duplicates=found,
        top_k=cfg.classify.top_k,
    )
    if mlflow or cfg.mlflow.enabled:
        model.tracked = model.log_mlflow(features=features_df, config=cfg)
    return model


def load_model(uri: str | os.PathLike[str], *, spark: SparkSession | None = None) -> Pool3Model:
    """The model that ``pool3 train`` or :meth:`Pool3Model.save` wrote into ``uri``, with the
    metrics of its ``metrics.json`` when the folder has one."""
    import json

    from pool3.storage import fs

    where = os.fspath(uri)
    classifier = load_classifier(where, spark=spark)
    metrics: dict[str, Any] = {}
    path = fs.join(where, "metrics.json")
    if fs.exists(spark, path):
        metrics = json.loads(fs.read_text(spark, path))
    return Pool3Model(classifier, metrics=metrics)


def with_labels(
    df: DataFrame,
    mode: str = "filename",
    *,
    path_col: str = "path",
    label_col: str = "label",
) -> DataFrame:
    """``df`` with ``label_col`` derived from each path, as ``featurize.labels`` does:
    ``"filename"`` (``shirt_12.jpg`` -> ``shirt``), ``"folder"`` (the parent folder's name)
    or ``"manifest:URI"`` (a CSV of ``path,label``, read on the driver)."""
    from pool3.images.labels import read_manifest
    from pool3.storage.files import resolve

    ship_code(df.sparkSession)
    label_mode, manifest_path = parse_label_mode(mode)
    manifest = None
    if manifest_path:
        where = resolve(manifest_path)
        manifest = read_manifest(where.fs_path, filesystem=where.filesystem(), shown=mode)

    def label(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            paths = frame[path_col].fillna("")
            frame[label_col] = labels_for_paths(paths, label_mode, manifest).to_numpy()
            yield frame

    base = df.drop(label_col) if label_col in df.columns else df
    schema = StructType([*base.schema.fields, StructField(label_col, StringType(), True)])
    return base.mapInPandas(label, schema).withColumn(label_col, F.col(label_col))
