"""``python -m pool3.jvm ARCHIVE``: the child process of :func:`pool3.jvm.build_archive`."""

import sys

from pool3.jvm.archive import train

train(sys.argv[1])
