"""The one test seam of the workers: a function named by ``POOL3_TEST_WORKER_HOOK``.

Tests inject faults into featurize and classify (a worker killed mid-partition, a probe of
what a worker imported) without any parameter in production signatures: they set

    POOL3_TEST_WORKER_HOOK=module:function

in the driver's environment. :func:`pool3.extraction.step.worker_options` reads it once per
step, where the driver builds :class:`pool3.extraction.kernel.WorkerOptions`, and puts the
function in ``WorkerOptions.after_batch``; each Python worker calls it after each frame of
rows it has sent. The function is pickled with the options: one defined in ``__main__``
(``__main__:function``, as in ``tests/apps``) is shipped by value, one in another module is
imported by name in the worker, so that module must be importable there. Unset or empty:
no hook. A name that does not resolve is a configuration error, not a silent no-op.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from pool3.errors import ConfigError

WORKER_HOOK_ENV = "POOL3_TEST_WORKER_HOOK"


def worker_hook() -> Callable[[], None] | None:
    """The function ``$POOL3_TEST_WORKER_HOOK`` names, or None when it is unset or empty."""
    name = os.environ.get(WORKER_HOOK_ENV, "").strip()
    if not name:
        return None
    module, _, attr = name.partition(":")
    try:
        hook = getattr(importlib.import_module(module), attr) if module and attr else None
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{WORKER_HOOK_ENV}={name}: {err}") from err
    if not callable(hook):
        raise ConfigError(f"{WORKER_HOOK_ENV}={name}: not module:function naming a function")
    return hook
