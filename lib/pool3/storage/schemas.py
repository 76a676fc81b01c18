"""The schema contracts of pool3's tables (Spark ``StructType``\\ s)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

#: One row per input file. ``features`` is 2048 float32 (null on error); ``model`` is the
#: featurizer's fingerprint (weights + preprocessing), ``runtime`` and ``precision`` say how
#: the features were computed (``openvino``/``tensorflow``; ``float32``, ``bfloat16`` or
#: ``int8-<calibration id>``); ``error`` is null when fine, else ``"<category>: <detail>"``
#: with category one of ``pool3.images.decode.CATEGORIES`` (``empty``, ``truncated``, ...).
FEATURES_SCHEMA = StructType(
    [
        StructField("path", StringType(), False),
        StructField("label", StringType(), True),
        StructField("sha256", StringType(), True),
        StructField("width", IntegerType(), True),
        StructField("height", IntegerType(), True),
        StructField("features", ArrayType(FloatType(), False), True),
        StructField("model", StringType(), False),
        StructField("runtime", StringType(), True),
        StructField("precision", StringType(), True),
        StructField("error", StringType(), True),
    ]
)

#: One row per scored file: the best label, its decision score, the top-k labels and scores.
PREDICTIONS_SCHEMA = StructType(
    [
        StructField("path", StringType(), False),
        StructField("predicted", StringType(), True),
        StructField("score", FloatType(), True),
        StructField("top_labels", ArrayType(StringType(), False), True),
        StructField("top_scores", ArrayType(FloatType(), False), True),
        StructField("model", StringType(), False),
        StructField("runtime", StringType(), True),
        StructField("precision", StringType(), True),
        StructField("error", StringType(), True),
    ]
)

FEATURE_COLUMNS = FEATURES_SCHEMA.fieldNames()
PREDICTION_COLUMNS = PREDICTIONS_SCHEMA.fieldNames()


def error_category(error: str | None) -> str | None:
    """``"truncated: ..."`` -> ``"truncated"``; None stays None."""
    return None if error is None else error.split(":", 1)[0]
