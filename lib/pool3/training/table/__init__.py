"""The training table: the rules a feature table must meet, and the one held-out split.

:mod:`.rules` checks a feature table and keeps its usable rows (:func:`.rules.prepare`
returns the :class:`.rules.TrainingTable`); :mod:`.split` assigns each image to the training
or the test set on Spark, the same for every solver; :mod:`.data` reads the split rows into
the driver's float32 array for the driver solvers.

May import: :mod:`pool3.config`, :mod:`pool3.errors`, :mod:`pool3.storage`,
:mod:`pool3.model` (the feature width), pyspark, pyarrow.
"""
