"""Images: bytes to RGB pixels (:mod:`.decode`), the TF1 resize in numpy (:mod:`.resize`)
and labels from paths (:mod:`.labels`).

Plain Python, Pillow and numpy; runs in the Spark Python workers and is testable without
Spark.

May import: :mod:`pool3.errors`. Never imports Spark, TensorFlow or any other pool3 package.
"""
