"""The active-set Newton method of liblinear's LinearSVC objective, and its passes.

:mod:`.method` (:func:`.method.fit_newton`) minimises every class's objective at once; it
touches the rows only through the passes of :mod:`.passes`, made over the driver's array
(:class:`.array_passes.ArrayPasses`, solver ``newton``) or as Spark jobs over float32 blocks
cached on the executors (:class:`.spark_passes.SparkPasses` over :mod:`.spark_blocks`,
solver ``spark``); the rows active at the current weights are held on the driver
(:mod:`.held`), where the CG solve of each Newton step runs (:mod:`.cg`).

May import: :mod:`pool3.errors`, :mod:`pool3.storage`, :mod:`pool3.training.table`,
numpy, pyarrow, pyspark.
"""
