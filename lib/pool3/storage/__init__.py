"""Storage: where runs read and write, and the contracts of what they write.

Owns the Hadoop-FileSystem helpers (:mod:`.fs`), the all-or-nothing commit of an output
directory (:mod:`.commit`), input checks and output preparation (:mod:`.outputs`), run
manifests (:mod:`.manifest`) and the Spark schemas of the feature and prediction tables
(:mod:`.schemas`).

May import: :mod:`pool3.errors`, :mod:`pool3.config`, pyspark. Never imports featurize,
training, scoring, report or commands.
"""
