"""Training: from a feature table to a fitted, evaluated linear classifier.

One entry point, :func:`pool3.training.fit.train_table` (``pool3 train``, :func:`pool3.train`
and :class:`pool3.SVMClassifier` all call it): the table's rules and split, the one choice of
solver, the fit, the evaluation on the held-out split and the duplicate search. Inside:

- :mod:`.table`: the rules a feature table must meet, the one held-out split (on Spark, the
  same for every solver) and the driver's float32 array of the split rows;
- :mod:`.solvers`: the one chooser (:mod:`.solvers.choose`), the solvers' one result type
  (:class:`.solvers.fitted.Fitted`) and the solvers behind it: liblinear and SGD on the
  driver, the float32 Newton solver on the driver (``newton``) or over rows cached on the
  executors (``spark``), Spark MLlib (``mllib``); the choice of C by cross-validation;
- :mod:`.newton`: the active-set Newton method of liblinear's objective and the passes it
  makes over the rows, on the driver's array or as Spark jobs over cached blocks;
- :mod:`.evaluation`: the metrics, suspected label errors and the result every solver
  returns;
- :mod:`.classifier`: the persisted classifier (what ``pool3 classify`` loads).

The parameters are the ``[train]`` config section itself (:class:`pool3.config.TrainParams`).

May import: :mod:`pool3.config`, :mod:`pool3.storage`, :mod:`pool3.connect`,
:mod:`pool3.duplicates`, scikit-learn, pyspark. Never imports featurize, scoring, report or
commands.
"""
