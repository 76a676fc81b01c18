"""Extraction (the featurize step): image files to one feature row per file, on the executors.

(Named ``extraction``, not ``featurize``, so that ``pool3.featurize`` is the public function of
:mod:`pool3.api` and never this package.)

Owns listing the input (:mod:`.listing`), the worker kernel that decodes, resizes and runs
the model a batch at a time (:mod:`.kernel`), the Spark step around it (:mod:`.step`:
``mapInPandas``, telemetry, progress), probing the executors' hardware, resolving the runtime
and precision, shipping the model to the workers and warming them (:mod:`.shipping`), int8
calibration on a sample of the input (:mod:`.calibration`), reuse of a committed output
in incremental mode (:mod:`.incremental`), and the one test seam of the workers, a hook named
by ``$POOL3_TEST_WORKER_HOOK`` (:mod:`.hook`).

May import: :mod:`pool3.config`, :mod:`pool3.storage`, :mod:`pool3.images`,
:mod:`pool3.model`, :mod:`pool3.session`. Never imports training, scoring, report, api or
commands.
"""
