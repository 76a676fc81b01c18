"""Spark failures while training, reported as what they are, with the setting to change.

A Spark MLlib fit that runs out of Java heap kills its tasks, then often the driver's JVM:
the user used to read ``unexpected error: ConnectionRefusedError: [Errno 111] Connection
refused``. :func:`spark_failure` turns such failures into a
:class:`~pool3.errors.ResourceError` naming the memory settings; other errors pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from pool3.errors import ResourceError

#: Text of a failure caused by memory: the JVM's, a Python worker's, a cluster manager's.
_MEMORY = re.compile(
    r"java\.lang\.OutOfMemoryError[^\n]*|Java heap space|GC overhead limit exceeded|"
    r"MemoryError[^\n]*|Container killed[^\n]*memory[^\n]*|exceeding memory limits[^\n]*|"
    r"Python worker exited unexpectedly[^\n]*",
)
#: What a Python driver sees when the JVM it talks to has died.
_JVM_GONE = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, EOFError)

_SETTINGS = (
    "raise spark.driver.memory (in local mode it is the executors' memory too) and "
    "spark.executor.memory (profile [spark] table, or --conf spark.driver.memory=8g), or "
    "fit with train.solver = 'spark' (Newton over float32 rows cached once; MLlib caches "
    "the rows as doubles for each class fitted at once)"
)


def _is_py4j_network(err: BaseException) -> bool:
    return type(err).__name__ in ("Py4JNetworkError",) or isinstance(err, _JVM_GONE)


@contextmanager
def spark_failure(what: str) -> Iterator[None]:
    """Re-raise an out-of-memory or lost-JVM failure inside the block as ResourceError."""
    try:
        yield
    except Exception as err:
        text = str(err)
        found = _MEMORY.search(text)
        if found:
            raise ResourceError(
                f"Spark ran out of memory while {what} ({found.group(0).strip()}): {_SETTINGS}"
            ) from err
        if _is_py4j_network(err) or _is_py4j_network(err.__cause__ or err):
            raise ResourceError(
                f"the connection to Spark's JVM was lost while {what} ({type(err).__name__}: "
                f"{text.splitlines()[0] if text else 'no message'}): the JVM most often dies "
                f"of java.lang.OutOfMemoryError (see the driver's log): {_SETTINGS}"
            ) from err
        raise
