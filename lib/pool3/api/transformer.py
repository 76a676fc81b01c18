"""``pool3.ImageFeaturizer``: :func:`pool3.featurize` as a ``pyspark.ml`` Transformer, for
Pipelines (Spark Classic and Connect), saved and loaded with ``pyspark.ml``'s persistence."""

from __future__ import annotations

from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame

from pool3.api.extract import api_config, check_columns, featurize_rows
from pool3.errors import ConfigError
from pool3.extraction.shipping import ship_model
from pool3.model import load_bundle


class ImageFeaturizer(
    Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable
):
    """Adds Inception-v3 pool_3 features to a DataFrame of images (see :func:`pool3.featurize`).

    Parameters
    ----------
    inputCol : str
        Column of image paths/URIs (default ``"path"``; ``binaryFile``'s ``content`` is used
        when present).
    outputCol : str
        Column of the 2048 features (default ``"features"``); ``sha256``, ``width``,
        ``height``, ``model``, ``runtime``, ``precision`` and ``error`` are added too.
    model, runtime, precision : str
        As :func:`pool3.featurize` (``"default"``, ``"auto"``, ``"auto"``).
    batchSize : int
        Images per inference call; 0 (default) chooses from the workers' memory.

    Examples
    --------
    >>> from pyspark.ml import Pipeline
    >>> pipeline = Pipeline(stages=[ImageFeaturizer(inputCol="path", outputCol="features")])
    """

    model: Param[str] = Param(
        Params._dummy(), "model", "feature model: 'default' or a .pb/.h5/.keras/.pt file",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    runtime: Param[str] = Param(
        Params._dummy(), "runtime", "auto, openvino or tensorflow",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    precision: Param[str] = Param(
        Params._dummy(), "precision", "auto, float32 or bfloat16",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    batchSize: Param[int] = Param(
        Params._dummy(), "batchSize", "images per inference call (0: automatic)",
        typeConverter=TypeConverters.toInt,
    )  # fmt: skip

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "path",
        outputCol: str = "features",
        model: str = "default",
        runtime: str = "auto",
        precision: str = "auto",
        batchSize: int = 0,
    ) -> None:
        super().__init__()
        self._setDefault(
            inputCol="path",
            outputCol="features",
            model="default",
            runtime="auto",
            precision="auto",
            batchSize=0,
        )
        kwargs: dict[str, Any] = self._input_kwargs  # type: ignore[attr-defined]
        self._set(**kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> ImageFeaturizer:
        """Set any of the constructor's parameters."""
        return self._set(**self._input_kwargs)  # type: ignore[attr-defined]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        cfg = api_config(
            model=self.getOrDefault(self.model),
            runtime=self.getOrDefault(self.runtime),
            precision=self.getOrDefault(self.precision),
            batch_size=self.getOrDefault(self.batchSize),
        )
        if cfg.model.precision == "int8":
            raise ConfigError("ImageFeaturizer runs float32 and bfloat16; int8 needs the CLI")
        check_columns(dataset, self.getInputCol(), self.getOutputCol())
        bundle = load_bundle(cfg.model.source, home=cfg.model.home or None)
        shipped = ship_model(dataset.sparkSession, bundle, cfg)
        return featurize_rows(
            dataset,
            shipped,
            cfg,
            path_col=self.getInputCol(),
            output_col=self.getOutputCol(),
        )
