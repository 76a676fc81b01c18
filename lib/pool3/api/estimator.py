"""``pool3.SVMClassifier``: :func:`pool3.train` as a ``pyspark.ml`` Estimator, and the model it
fits (``SVMClassifierModel``, a :class:`~pool3.api.model.Pool3Model` as a Transformer), so that
``Pipeline([ImageFeaturizer(...), SVMClassifier(...)]).fit(images)`` gives one
``PipelineModel`` that saves, loads and turns images into predictions, on Spark Classic and
over Spark Connect.

Saved with ``pyspark.ml``'s persistence for Python stages, which Connect's pipeline writer
and reader call too: ``<path>/metadata`` (uid and params, written by Spark:
:meth:`~pyspark.ml.util.DefaultParamsWriter.saveMetadata`) and, for the model, ``<path>/data``:
a pool3 model directory (``classifier.npz``, ``classifier.json``, ``metrics.json``) written
through :mod:`pool3.storage.fs` (any URI, no JVM), which :func:`pool3.load_model` and
``pool3 classify --model`` read as they read ``pool3 train``'s. Over Connect, ``<path>`` must
be storage that the server and the client both reach (HDFS, S3...), as for every pool3 output.

Size (over ~300 lines): the Estimator and its Model share their Params and their
persistence; pyspark.ml's Param declarations take most of the lines.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasSeed
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)
from pyspark.sql import DataFrame, SparkSession

from pool3.api.model import Pool3Model, load_model, train
from pool3.config import ClassifyConfig, ReportConfig, TrainParams
from pool3.errors import InputError
from pool3.storage import fs
from pool3.training.classifier import LinearModel, save_model

#: the sub-folder of a saved SVMClassifierModel that holds its pool3 model directory
DATA = "data"
#: the defaults, as ``[train]``, ``[classify]`` and ``[report]`` declare them
_TRAIN, _TOP_K, _DUPLICATES = TrainParams(), ClassifyConfig().top_k, ReportConfig().duplicates
#: the columns a fit reads (a held copy of a computed frame keeps only these)
_TRAIN_COLUMNS = ("path", "sha256", "features", "model", "precision", "error")


def _to_c(value: Any) -> float | str:
    """``C``: a number (> 0, checked at fit, as ``train.C``) or ``"auto"``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if value == "auto":
        return "auto"
    raise TypeError(f"C must be a number > 0 or 'auto' (cross-validated), got {value!r}")


class _SVMClassifierParams(HasFeaturesCol, HasLabelCol, HasSeed):
    """The params of :class:`SVMClassifier`, kept by the model it fits (and saved with it)."""

    C: Param[float | str] = Param(
        Params._dummy(), "C", "SVM regularisation (> 0), or 'auto': cross-validated",
        typeConverter=_to_c,
    )  # fmt: skip
    split: Param[str] = Param(
        Params._dummy(), "split", "held-out split: 'content' (by sha256) or 'sklearn'",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    solver: Param[str] = Param(
        Params._dummy(), "solver", "auto, liblinear, sgd, newton, spark or mllib",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    testSize: Param[float] = Param(
        Params._dummy(), "testSize", "share of the usable rows held out for evaluation",
        typeConverter=TypeConverters.toFloat,
    )  # fmt: skip
    stratify: Param[bool] = Param(
        Params._dummy(), "stratify", "split per class",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    duplicates: Param[bool] = Param(
        Params._dummy(), "duplicates", "search exact and near duplicates (in the metrics)",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    topK: Param[int] = Param(
        Params._dummy(), "topK", "classes in top_labels and top_scores",
        typeConverter=TypeConverters.toInt,
    )  # fmt: skip

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            featuresCol="features",
            labelCol="label",
            C=_TRAIN.C,
            split=_TRAIN.split,
            solver=_TRAIN.solver,
            seed=_TRAIN.seed,
            testSize=_TRAIN.test_size,
            stratify=_TRAIN.stratify,
            duplicates=_DUPLICATES,
            topK=_TOP_K,
        )


class SVMClassifier(
    Estimator["SVMClassifierModel"],
    _SVMClassifierParams,
    DefaultParamsReadable["SVMClassifier"],
    MLWritable,
):
    """:func:`pool3.train` as a ``pyspark.ml`` Estimator: ``fit`` runs the same steps
    (:func:`pool3.training.fit.train_table`) and returns an :class:`SVMClassifierModel`.

    Parameters
    ----------
    featuresCol : str
        Column of the 2048 pool_3 features (default ``"features"``: ``ImageFeaturizer``'s
        ``outputCol``); the frame also needs ``path``, ``model`` and ``error``, as
        :func:`pool3.featurize` and a feature table give.
    labelCol : str
        Column of class names (default ``"label"``); rows with none are not used.
    C, split, solver, seed, testSize, stratify, duplicates
        As :func:`pool3.train`'s ``C``, ``split``, ``solver``, ``seed``, ``test_size``,
        ``stratify``, ``duplicates``; ``C`` is a number or ``"auto"``.
    topK : int
        Classes in the model's ``top_labels`` and ``top_scores`` (default
        ``classify.top_k``).

    Notes
    -----
    The model adds pool3's fixed prediction columns (``predicted``, ``score``, ``top_labels``,
    ``top_scores``; ``error`` where the frame has none). A computed frame (a featurizer's
    output) is cached for the fit's passes, as ``pyspark.ml``'s estimators do.

    Examples
    --------
    >>> from pyspark.ml import Pipeline
    >>> pipeline = Pipeline(stages=[ImageFeaturizer(), SVMClassifier(C=0.5)])
    """

    @keyword_only
    def __init__(
        self,
        *,
        featuresCol: str = "features",
        labelCol: str = "label",
        C: float | str = _TRAIN.C,
        split: str = _TRAIN.split,
        solver: str = _TRAIN.solver,
        seed: int = _TRAIN.seed,
        testSize: float = _TRAIN.test_size,
        stratify: bool = _TRAIN.stratify,
        duplicates: bool = _DUPLICATES,
        topK: int = _TOP_K,
    ) -> None:
        super().__init__()
        kwargs: dict[str, Any] = self._input_kwargs  # type: ignore[attr-defined]
        self._set(**kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> SVMClassifier:
        """Set any of the constructor's parameters."""
        return self._set(**self._input_kwargs)  # type: ignore[attr-defined]

    def write(self) -> MLWriter:
        return _StageWriter(self)

    def _fit(self, dataset: DataFrame) -> SVMClassifierModel:
        features, label = self.getFeaturesCol(), self.getLabelCol()
        if features not in dataset.columns:
            raise InputError(
                f"the DataFrame has no features column {features!r} (columns: "
                f"{', '.join(dataset.columns)}); put ImageFeaturizer(outputCol={features!r}) "
                "before SVMClassifier in the Pipeline, or set featuresCol"
            )
        table = dataset
        if features != "features":
            table = table.drop("features").withColumnRenamed(features, "features")
        get = self.getOrDefault
        with _held(table, (label, *_TRAIN_COLUMNS)) as held:
            model = train(
                held,
                label_col=label,
                C=get(self.C),
                split=get(self.split),
                solver=get(self.solver),
                seed=self.getSeed(),
                test_size=get(self.testSize),
                stratify=get(self.stratify),
                duplicates=get(self.duplicates),
            )
        return self._copyValues(SVMClassifierModel(model))


@contextmanager
def _held(df: DataFrame, columns: Sequence[str]) -> Iterator[DataFrame]:
    """``df``, cached while the fit's Spark passes run when Spark computes it (each pass would
    featurize a featurizer's output again); a frame the caller cached, or a scan of Parquet
    (the driver solvers read its files themselves), as it is."""
    level = df.storageLevel
    cached = level.useMemory or level.useDisk
    files = [] if cached else df.inputFiles()
    if cached or (files and all(f.endswith(".parquet") for f in files)):
        yield df
        return
    held = df.select(*[c for c in dict.fromkeys(columns) if c in df.columns]).persist()
    try:
        yield held
    finally:
        held.unpersist()


class SVMClassifierModel(Model, _SVMClassifierParams, MLReadable["SVMClassifierModel"], MLWritable):
    """The classifier :class:`SVMClassifier` fits: a ``pyspark.ml`` Transformer over a
    :class:`~pool3.api.model.Pool3Model`.

    ``transform`` is :meth:`Pool3Model.transform <pool3.api.model.Pool3Model.transform>` on
    ``featuresCol``: a frame of features, or of images without features (featurized first);
    ``.metrics`` is ``metrics.json``'s dict; ``write_report`` writes the report of a model
    fitted in this process. ``save``/``load`` (or ``write()``/``read()``) keep the params and
    the pool3 model directory (module docstring).
    """

    def __init__(self, model: Pool3Model | None = None) -> None:
        super().__init__()
        self._pool3 = model

    @property
    def pool3_model(self) -> Pool3Model:
        """The :class:`~pool3.api.model.Pool3Model` this stage scores with."""
        if self._pool3 is None:
            raise InputError(
                "this SVMClassifierModel holds no classifier: get one from SVMClassifier.fit "
                "or SVMClassifierModel.load"
            )
        return self._pool3

    @property
    def metrics(self) -> dict[str, Any]:
        """What ``metrics.json`` holds (accuracy, per-class scores, the run's sizes...)."""
        return self.pool3_model.metrics

    @property
    def classifier(self) -> LinearModel:
        """Coefficients, intercepts, classes and the feature model's fingerprint."""
        return self.pool3_model.classifier

    @property
    def classes(self) -> tuple[str, ...]:
        return self.pool3_model.classes

    def write_report(
        self, uri: str, *, spark: SparkSession | None = None, thumbnail_px: int | None = None
    ) -> dict[str, str]:
        """:meth:`Pool3Model.write_report <pool3.api.model.Pool3Model.write_report>`: only
        for a model fitted in this process (a loaded one raises InputError)."""
        return self.pool3_model.write_report(uri, spark=spark, thumbnail_px=thumbnail_px)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        model = replace(self.pool3_model, top_k=self.getOrDefault(self.topK))
        return model.transform(dataset, features_col=self.getFeaturesCol())

    def write(self) -> MLWriter:
        return _StageWriter(self)

    @classmethod
    def read(cls) -> MLReader[SVMClassifierModel]:
        return _ModelReader()


class _StageWriter(MLWriter):
    """``<path>/metadata`` as ``pyspark.ml`` writes it, and a model's ``<path>/data``.

    ``overwrite()`` deletes ``<path>`` through :mod:`pool3.storage.fs`: ``MLWriter``'s own
    asks the driver's JVM, which a Connect client has not.
    """

    def __init__(self, instance: Params) -> None:
        super().__init__()
        self.instance = instance

    def _handleOverwrite(self, path: str) -> None:
        spark = self.sparkSession
        if fs.exists(spark, path):
            fs.delete(spark, path)

    def saveImpl(self, path: str) -> None:
        spark = self.sparkSession
        DefaultParamsWriter.saveMetadata(self.instance, path, spark)
        if isinstance(self.instance, SVMClassifierModel):
            model = self.instance.pool3_model
            data = fs.join(path, DATA)
            save_model(model.classifier, data, spark=spark)
            if model.metrics:
                text = json.dumps(model.metrics, indent=2, ensure_ascii=False)
                fs.write_text(spark, fs.join(data, "metrics.json"), text)


class _ModelReader(MLReader[SVMClassifierModel]):
    """An :class:`SVMClassifierModel` from what :class:`_StageWriter` wrote: its uid and
    params, and its classifier and metrics (no training run: no report)."""

    def load(self, path: str) -> SVMClassifierModel:
        spark = self.sparkSession
        metadata = DefaultParamsReader.loadMetadata(path, spark)
        expected = f"{SVMClassifierModel.__module__}.{SVMClassifierModel.__name__}"
        if metadata.get("class") != expected:
            raise InputError(
                f"{path} holds a saved {metadata.get('class')}, not an {expected}; load it "
                "with its own class (PipelineModel.load for a whole pipeline)"
            )
        stage = SVMClassifierModel(load_model(fs.join(path, DATA), spark=spark))
        stage._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(stage, metadata)
        return stage
