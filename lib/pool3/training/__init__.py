"""Training: from a feature table to a fitted, evaluated linear classifier.

Owns the rules a feature table must meet and the one held-out split (:mod:`.rules`,
:mod:`.split`; the same for every solver), the arrays collected for the driver solvers
(:mod:`.data`), the solvers (:mod:`.sklearn_solver`: liblinear and SGD on the driver;
:mod:`.spark_solver`: Spark MLlib on the executors), the persisted classifier
(:mod:`.classifier`), the metrics (:mod:`.metrics`) and the result both solvers return
(:mod:`.result`). The parameters are the ``[train]`` config section itself
(:class:`pool3.config.TrainParams`).

May import: :mod:`pool3.config`, :mod:`pool3.storage`, scikit-learn, pyspark. Never
imports featurize, scoring, report or commands.
"""
