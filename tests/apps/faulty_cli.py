"""The ``pool3`` command with a worker fault injected, for tests/commands/test_faults.py.

    python tests/apps/faulty_cli.py featurize --input imgs --output out --master 'local[2,3]'

Runs :func:`pool3.cli.main` with ``POOL3_TEST_WORKER_HOOK`` naming a hook that kills the
Python worker running the first attempt of partition 0, right after its first batch of rows
has left (so a partial attempt must be dropped). The hook is defined here, in ``__main__``,
so Spark ships it by value: production code has no fault switch of its own
(:mod:`pool3.extraction.hook`).
"""

from __future__ import annotations

import os
import sys

from pool3.cli import main
from pool3.extraction.hook import WORKER_HOOK_ENV

FAULT_LINE = "pool3 test fault: killing worker"


def crash_first_attempt_of_partition_0() -> None:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None and ctx.partitionId() == 0 and ctx.attemptNumber() == 0:
        print(f"{FAULT_LINE} pid {os.getpid()}", file=sys.stderr, flush=True)
        os._exit(17)


if __name__ == "__main__":
    os.environ[WORKER_HOOK_ENV] = f"__main__:{crash_first_attempt_of_partition_0.__name__}"
    sys.exit(main(sys.argv[1:]))
