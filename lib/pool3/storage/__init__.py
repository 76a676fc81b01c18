"""Storage: where runs read and write, and the contracts of what they write.

Owns input files by URI through pyarrow.fs (:mod:`.files`: resolve, stat, list, read; used
on the driver and in the workers, no JVM; :mod:`.walk` enumerates a folder), the
Hadoop-FileSystem helpers for outputs (:mod:`.fs`), the small files of a model directory
by URI (:mod:`.dirs`: Hadoop FileSystem, or pyarrow.fs without a JVM), the all-or-nothing
commit of an output directory (:mod:`.commit`), one owner per output (:mod:`.lock`: a
create-if-absent lock with a heartbeat), input checks and output preparation
(:mod:`.outputs`), run manifests (:mod:`.manifest`) and the Spark schemas of the feature
and prediction tables (:mod:`.schemas`).

May import: :mod:`pool3.errors`, :mod:`pool3.config`, pyspark, pyarrow. Never imports featurize,
training, scoring, report or commands.
"""
