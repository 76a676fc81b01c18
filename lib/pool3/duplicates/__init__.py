"""Duplicate images in a feature table: exact (same ``sha256``) and near (cosine of features).

:func:`.search.find_duplicates` finds them where the rows are: on the driver's float32 array
(:mod:`.arrays`), over the rows the ``spark`` solver cached on the executors (:mod:`.blocks`,
through the :class:`.blocks.CachedRows` interface), or with Spark joins (:mod:`.lsh`, the
random-hyperplane LSH shared by all three). Training runs it after a fit; the report and
the commands read its :class:`.search.Duplicates`.

May import: numpy, pandas, pyarrow, pyspark. Never imports training (training imports it).
"""
