"""The public Python API: DataFrame in, DataFrame out, on Spark Classic and Spark Connect.

``featurize`` / ``ImageFeaturizer`` (features for images), ``train`` / ``SVMClassifier`` (the
SVM on features, evaluated; the latter a ``pyspark.ml`` Estimator, whose
``SVMClassifierModel`` follows ``ImageFeaturizer`` in a Pipeline), ``load_model``,
``with_labels``; all importable from ``pool3`` itself. They run the same steps as the CLI
without its run lifecycle (no commit, no lock, no exit codes): the commands of
:mod:`pool3.commands` add that.

May import every package below ``commands``; only :mod:`pool3` and :mod:`pool3.commands`
import it.
"""

from __future__ import annotations

from pool3.api.estimator import SVMClassifier, SVMClassifierModel
from pool3.api.extract import featurize
from pool3.api.model import Pool3Model, load_model, train, with_labels
from pool3.api.transformer import ImageFeaturizer

__all__ = [
    "ImageFeaturizer",
    "Pool3Model",
    "SVMClassifier",
    "SVMClassifierModel",
    "featurize",
    "load_model",
    "train",
    "with_labels",
]
