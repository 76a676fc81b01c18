"""Training: from a feature table to a fitted, evaluated linear classifier.

Owns the rules a feature table must meet and the one held-out split (:mod:`.rules`,
:mod:`.split`; the same for every solver), the one choice of solver (:mod:`.solvers`), the
solvers behind their one result type (:class:`.solvers.Fitted`):

- liblinear and SGD on the driver (:mod:`.sklearn_solver`), on the array :mod:`.data` reads;
- the active-set Newton solver of liblinear's objective (:mod:`.newton`), whose passes over
  the rows run on the driver's array (:class:`.passes.ArrayPasses`) or as Spark jobs over
  rows cached on the executors (:mod:`.spark_passes`, :mod:`.spark_newton`), with the rows
  it needs held on the driver (:mod:`.held`);
- Spark MLlib (:mod:`.spark_solver`, which also evaluates what the cluster fitted);

the choice of C by cross-validation (:mod:`.c_search`), the persisted classifier
(:mod:`.classifier`), the metrics (:mod:`.metrics`), suspected label errors
(:mod:`.quality`), the duplicate search (:mod:`.duplicates`) and the result every solver
returns (:mod:`.result`). The parameters are the ``[train]`` config section itself
(:class:`pool3.config.TrainParams`).

May import: :mod:`pool3.config`, :mod:`pool3.storage`, scikit-learn, pyspark. Never
imports featurize, scoring, report or commands.
"""
