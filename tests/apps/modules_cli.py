"""The ``pool3`` command with a worker hook that reports which ML libraries a worker imported.

    POOL3_TEST_PROBE_DIR=/tmp/p python tests/apps/modules_cli.py featurize --input ... --output ...

After each batch a Python worker writes ``<pid>.json`` with ``tensorflow``/``keras``/
``openvino`` in ``sys.modules`` into ``$POOL3_TEST_PROBE_DIR``. The hook is named by
``POOL3_TEST_WORKER_HOOK`` (:mod:`pool3.extraction.hook`) and defined in ``__main__``, so
Spark ships it by value: production code has no probe of its own.
"""

from __future__ import annotations

import os
import sys

from pool3.cli import main
from pool3.extraction.hook import WORKER_HOOK_ENV


def report_modules() -> None:
    import json
    from pathlib import Path

    seen = {m: m in sys.modules for m in ("tensorflow", "keras", "openvino")}
    out = Path(os.environ["POOL3_TEST_PROBE_DIR"]) / f"{os.getpid()}.json"
    out.write_text(json.dumps(seen))


if __name__ == "__main__":
    os.environ[WORKER_HOOK_ENV] = f"__main__:{report_modules.__name__}"
    sys.exit(main(sys.argv[1:]))
