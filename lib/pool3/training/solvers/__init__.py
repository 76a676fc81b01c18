"""The solvers of the linear SVM, their one result type and the one place that chooses.

:mod:`.choose` resolves ``train.solver`` (``"auto"``: by the table's size and the driver's
memory) and says why; every solver returns a :class:`.fitted.Fitted`:

- ``liblinear``, ``sgd``: scikit-learn on the driver (:mod:`.sklearn_solver`);
- ``newton``: :mod:`pool3.training.newton` over the driver's float32 array;
- ``spark``: the same Newton iterations over rows cached on the executors
  (:mod:`.spark_newton`);
- ``mllib``: Spark MLlib's ``OneVsRest(LinearSVC)`` (:mod:`.mllib_solver`).

:mod:`.driver` fits and evaluates on the driver, :mod:`.spark_solver` on the cluster;
:mod:`.c_search` chooses ``C = "auto"`` by cross-validation.

May import: :mod:`pool3.config`, :mod:`pool3.errors`, :mod:`pool3.connect`,
:mod:`pool3.duplicates`, :mod:`pool3.training.table`, :mod:`pool3.training.newton`,
:mod:`pool3.training.evaluation`, :mod:`pool3.training.classifier`, scikit-learn, pyspark.
"""
