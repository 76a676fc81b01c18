"""``pool3.featurize``: a DataFrame of images (or of their paths) in, the same rows with
their pool_3 features out; the same on Spark Classic and over Spark Connect.

It runs the CLI's featurize kernel (:func:`pool3.extraction.kernel.featurize_batches`) on the
caller's rows: the model is shipped once per session (:func:`pool3.extraction.shipping.ship_model`,
a session artifact) and built once per Python worker; a file that cannot be read or decoded
gives an error row (``error`` set, ``features`` null), never a crash or a lost row. Nothing is
written and no lock is taken: that is ``pool3 featurize``'s job.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql.types import BinaryType, StructField, StructType

from pool3.config import Config, load_config
from pool3.errors import ConfigError, InputError
from pool3.extraction.kernel import MB, featurize_batches
from pool3.extraction.paths import files_frame
from pool3.extraction.shipping import ShippedModel, ship_model
from pool3.extraction.step import worker_options
from pool3.model import load_bundle
from pool3.storage.schemas import FEATURES_SCHEMA

log = logging.getLogger(__name__)

#: the columns :func:`featurize` adds, as in the feature table
FEATURE_FIELDS = ("sha256", "width", "height", "features", "model", "runtime", "precision", "error")


def api_config(
    config: Config | None = None,
    *,
    model: str = "default",
    runtime: str = "auto",
    precision: str = "auto",
    batch_size: int | None = None,
    **train: Any,
) -> Config:
    """A validated :class:`~pool3.config.Config` from keyword settings (no profile, no
    ``POOL3_*`` environment), on top of ``config`` where given; ``train`` sets ``train.*``."""
    overrides: dict[str, object] = {
        "model.source": model,
        "model.runtime": runtime,
        "model.precision": precision,
    }
    if batch_size is not None:
        overrides["model.batch_size"] = batch_size
    overrides.update({f"train.{k}": v for k, v in train.items() if v is not None})
    if config is not None:
        base = {f"{s}.{k}": v for s, sec in config.to_dict().items() for k, v in sec.items()}
        overrides = {**base, **overrides}
    return load_config(None, overrides=overrides, env={})


def added_columns(output_col: str = "features") -> tuple[str, ...]:
    """The columns featurize adds, with the features in ``output_col``."""
    return tuple(output_col if c == "features" else c for c in FEATURE_FIELDS)


def check_columns(df: DataFrame, path_col: str, output_col: str = "features") -> None:
    """InputError unless ``df`` has a string ``path_col`` and none of the columns added;
    called before the model is shipped, so that a wrong frame fails at once."""
    adds = added_columns(output_col)
    types = dict(df.dtypes)
    if path_col not in types:
        raise InputError(
            f"the DataFrame has no column {path_col!r} (columns: {', '.join(df.columns)}); "
            "pass path_col= (inputCol= for ImageFeaturizer) naming the column of image paths"
        )
    if types[path_col] != "string":
        raise InputError(f"column {path_col!r} is {types[path_col]}, expected string paths/URIs")
    if "content" in types and not isinstance(df.schema["content"].dataType, BinaryType):
        raise InputError(f"column 'content' is {types['content']}, expected binary image bytes")
    clash = [c for c in adds if c in types]
    if clash:
        raise InputError(
            f"the DataFrame already has column(s) {', '.join(clash)} that featurize adds; "
            "drop or rename them first"
        )


def featurize_rows(
    df: DataFrame,
    shipped: ShippedModel,
    config: Config,
    *,
    path_col: str = "path",
    output_col: str = "features",
) -> DataFrame:
    """``df`` with the feature columns added, by the workers (see :func:`featurize`); the
    caller has checked ``df`` with :func:`check_columns` before shipping the model."""
    adds = added_columns(output_col)
    max_bytes = config.featurize.max_file_mb * MB
    opts = worker_options(shipped, config, label_mode="none")
    fields = [
        StructField(added, FEATURES_SCHEMA[c].dataType, True)
        for c, added in zip(FEATURE_FIELDS, adds, strict=True)
    ]
    schema = StructType([*df.schema.fields, *fields])

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        held: deque[pd.DataFrame] = deque()  # appended by the kernel's prefetch thread

        def files(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for frame in frames:
                held.append(frame)
                yield files_frame(frame, path_col, max_bytes)

        # The kernel gives the rows in order, a frame of files in frames of at most
        # output_rows() rows (one empty frame for an empty one): each is the next slice.
        current, used = pd.DataFrame(), 0
        for rows in featurize_batches(files(frames), shipped.featurizer, opts):
            if used == len(current):
                current, used = held.popleft().reset_index(drop=True), 0
            frame = current.iloc[used : used + len(rows)].reset_index(drop=True)
            used += len(rows)
            for name, added in zip(FEATURE_FIELDS, adds, strict=True):
                frame[added] = rows[name].to_numpy()
            yield frame

    return df.mapInPandas(run, schema)


def featurize(
    df: DataFrame,
    *,
    path_col: str = "path",
    model: str = "default",
    runtime: str = "auto",
    precision: str = "auto",
    batch_size: int | None = None,
    config: Config | None = None,
) -> DataFrame:
    """Inception-v3 pool_3 features for every row of ``df``.

    Parameters
    ----------
    df : DataFrame
        One row per image: ``spark.read.format("binaryFile").load(...)`` (its ``content`` is
        used, so the bytes are not read twice) or any DataFrame with a column of paths/URIs
        (local, ``file://``, ``hdfs://``, ``s3a://``, ``gs://``, ``abfs(s)://``,
        Databricks ``/Volumes/...``) readable from the workers.
    path_col : str
        The column of paths (kept as it is).
    model : str
        ``"default"`` (the shipped 2015 weights) or a ``.pb``/``.h5``/``.keras``/``.pt``
        file on the driver (or client).
    runtime, precision : str
        As ``model.runtime`` / ``model.precision``: ``"auto"`` picks OpenVINO on CPU
        workers and bfloat16 where their CPUs run it natively. ``"int8"`` needs a
        calibration set: use ``pool3 featurize --precision int8``.
    batch_size : int, optional
        Images per inference call (default: from the workers' memory).
    config : Config, optional
        Further settings (``featurize.max_file_mb``, ``featurize.worker_memory_mb``...).

    Returns
    -------
    DataFrame
        ``df``'s rows and columns, one output row per input row, plus ``sha256``, ``width``,
        ``height``, ``features`` (2048 floats, null on error), ``model``, ``runtime``,
        ``precision`` and ``error`` (``"<category>: <detail>"``, null when the image was
        read). Lazy: nothing runs until an action.

    Raises
    ------
    InputError
        No such path column, or ``df`` already has one of the added columns.
    ConfigError
        An unknown setting, or ``precision="int8"``.
    """
    cfg = api_config(
        config, model=model, runtime=runtime, precision=precision, batch_size=batch_size
    )
    if cfg.model.precision == "int8":
        raise ConfigError(
            "precision='int8' quantizes on a calibration sample of the input: use "
            "pool3 featurize --precision int8 (the API runs float32 and bfloat16)"
        )
    check_columns(df, path_col)
    spark = df.sparkSession
    bundle = load_bundle(cfg.model.source, home=cfg.model.home or None)
    shipped = ship_model(spark, bundle, cfg)
    log.info("featurize: %s %s on the rows of a DataFrame", shipped.runtime, shipped.precision)
    return featurize_rows(df, shipped, cfg, path_col=path_col)


__all__ = ["FEATURE_FIELDS", "api_config", "featurize", "featurize_rows"]
