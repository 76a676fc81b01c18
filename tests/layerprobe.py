"""A pytest plugin for tests/test_layers.py: records what a collection selected and deselected.

Loaded with ``-p layerprobe`` (``tests/`` on ``PYTHONPATH``) in a ``pytest --collect-only``
subprocess; writes ``{"selected": [...], "deselected": [...]}`` to ``$POOL3_LAYER_PROBE``, each
test as its node id, the fixtures it uses (transitively) and its markers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_deselected: list[pytest.Item] = []


def _describe(item: pytest.Item) -> dict[str, Any]:
    return {
        "nodeid": item.nodeid,
        "fixtures": sorted(getattr(item, "fixturenames", ())),
        "markers": sorted({mark.name for mark in item.iter_markers()}),
    }


def pytest_deselected(items: list[pytest.Item]) -> None:
    _deselected.extend(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    report = {
        "selected": [_describe(item) for item in session.items],
        "deselected": [_describe(item) for item in _deselected],
    }
    Path(os.environ["POOL3_LAYER_PROBE"]).write_text(json.dumps(report))
