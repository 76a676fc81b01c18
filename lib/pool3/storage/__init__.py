"""Storage: where runs read and write, and the contracts of what they write.

Owns input files by URI through pyarrow.fs (:mod:`.files`: resolve, stat, list, read; used
on the driver and in the workers, no JVM; :mod:`.walk` enumerates a folder), the
helpers for outputs and the model directory (:mod:`.fs`: pyarrow.fs through :mod:`.arrowfs`,
the same on Spark Classic, over Spark Connect and without a session), the all-or-nothing
commit of an output directory (:mod:`.commit`), one owner per output (:mod:`.lock`: a
create-if-absent lock with a heartbeat), input checks and output preparation
(:mod:`.outputs`), run manifests (:mod:`.manifest`) and the Spark schemas of the feature
and prediction tables (:mod:`.schemas`).

May import: :mod:`pool3.errors`, :mod:`pool3.config`, pyspark, pyarrow. Never imports extraction,
training, scoring, report or commands.
"""
