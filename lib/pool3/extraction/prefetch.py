"""A generator run one item ahead of its consumer, in a daemon thread (the worker's prefetch).

May import: the standard library only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_ITEM, _END, _RAISED = "item", "end", "raised"


class Prefetch(Generic[T]):
    """The items of ``make(cancel)``, produced in a daemon thread one item ahead of the caller.

    The thread makes an item only when asked: the first one at start, the next one as soon
    as the caller takes one, so at most two items exist at a time (the caller's and the next
    one, being made or ready). An exception in the thread is raised to the caller, with its
    type, when the caller reaches it. :meth:`close` sets ``cancel`` and wakes the thread,
    which then stops (``make`` checks ``cancel`` between files) and closes its iterator;
    the result queue never holds more than one item, so the thread never blocks on a caller
    that is gone.
    """

    def __init__(
        self, make: Callable[[threading.Event], Generator[T, None, None]], *, name: str
    ) -> None:
        self._cancel = threading.Event()
        self._source = make(self._cancel)
        self._asks = threading.Semaphore(0)
        self._out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self._finished = False
        self.waited = 0.0  # seconds the caller waited for the last item
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._asks.release()

    def _run(self) -> None:
        try:
            while True:
                self._asks.acquire()
                if self._cancel.is_set():
                    return
                try:
                    item = next(self._source)
                except StopIteration:
                    self._out.put((_END, None))
                    return
                except BaseException as err:  # the caller gets it, whatever it is
                    self._out.put((_RAISED, err))
                    return
                self._out.put((_ITEM, item))
                del item
        finally:
            self._source.close()  # here: the only thread that ever runs the source

    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        t0 = time.perf_counter()
        kind, value = self._out.get()
        waited = time.perf_counter() - t0
        if kind == _ITEM:
            self._asks.release()  # make the next one while the caller works on this one
            self.waited = waited
            return value
        self._finished = True
        self._thread.join()
        if kind == _RAISED:
            raise value
        raise StopIteration

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (it finishes at most the file in hand) and wait for it."""
        self._finished = True
        self._cancel.set()
        self._asks.release()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("prefetch thread still busy %.0f s after close; left to end", timeout)
