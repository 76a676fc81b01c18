"""pool3: Inception-v3 pool_3 features at Spark scale, a linear SVM on top.

The Python API (README, "From Python and notebooks")::

    import pool3
    images = spark.read.format("binaryFile").load("/data/images")
    features = pool3.featurize(images)
    model = pool3.train(pool3.with_labels(features))
    model.transform(features).select("path", "predicted", "score")

The names are imported on first use, so that ``import pool3`` (in every Python worker) stays
light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pool3.version import __version__

__all__ = [
    "ImageFeaturizer",
    "Pool3Model",
    "SVMClassifier",
    "SVMClassifierModel",
    "__version__",
    "featurize",
    "load_model",
    "train",
    "with_labels",
]

if TYPE_CHECKING:
    from pool3.api import (
        ImageFeaturizer,
        Pool3Model,
        SVMClassifier,
        SVMClassifierModel,
        featurize,
        load_model,
        train,
        with_labels,
    )


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        import pool3.api

        return getattr(pool3.api, name)
    raise AttributeError(f"module 'pool3' has no attribute {name!r}")
