"""Featurize: image files to one feature row per file, on the executors.

Owns listing the input (:mod:`.listing`), the worker kernel that decodes, resizes and runs
the model a batch at a time (:mod:`.kernel`), the Spark step around it (:mod:`.step`:
``mapInPandas``, telemetry, progress), shipping the model to the workers and warming them
(:mod:`.shipping`), and reuse of a committed output in incremental mode
(:mod:`.incremental`).

May import: :mod:`pool3.config`, :mod:`pool3.storage`, :mod:`pool3.images`,
:mod:`pool3.model`. Never imports training, scoring, report or commands.
"""
