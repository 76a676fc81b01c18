"""MLflow: the tracked runs of ``pool3 train`` / ``pool3 featurize``, the ``pool3`` model
flavor (featurizer and classifier as one model that scores images), and classifiers read back
from the registry (``pool3 classify --model models:/NAME@ALIAS``).

MLflow is an optional extra (``pool3[mlflow]``): this package imports it, and nothing imports
this package unless MLflow is asked for (``--mlflow``, ``mlflow.enabled``, ``pool3.train(...,
mlflow=True)``, a ``models:/`` or ``runs:/`` model URI).

May import :mod:`pool3.errors`, :mod:`pool3.config`, :mod:`pool3.storage`, :mod:`pool3.model`,
:mod:`pool3.extraction` (the featurize kernel), :mod:`pool3.training` (the classifier's files),
:mod:`pool3.scoring` and :mod:`pool3.report`, and MLflow. Imported by :mod:`pool3.api` and
:mod:`pool3.commands` only.
"""
