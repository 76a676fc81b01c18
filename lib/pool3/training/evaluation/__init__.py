"""What a fit is judged by: metrics, suspected label errors, and the training result.

:mod:`.metrics` (accuracy with its interval, per-class and averaged scores, the confusion
matrix), :mod:`.quality` (images whose label the classifier confidently disagrees with),
:mod:`.result` (:class:`.result.TrainResult`, what every solver returns), and
:mod:`.spark_scores` (the test set and the training mistakes scored from the ``spark``
solver's cached rows).

May import: :mod:`pool3.config`, :mod:`pool3.errors`, :mod:`pool3.duplicates`,
:mod:`pool3.training.table`, :mod:`pool3.training.newton`,
:mod:`pool3.training.classifier`, scikit-learn, pyspark.
"""
