"""The test seam of the workers: ``$POOL3_TEST_WORKER_HOOK`` into ``WorkerOptions.after_batch``."""

from __future__ import annotations

import pytest

from pool3.config import Config
from pool3.errors import ConfigError
from pool3.extraction.hook import WORKER_HOOK_ENV, worker_hook
from pool3.extraction.shipping import ShippedModel
from pool3.extraction.step import worker_options
from pool3.model.runtime import Placement

CALLS: list[str] = []


def record() -> None:
    CALLS.append("called")


def shipped() -> ShippedModel:
    placement = Placement(runtime="tensorflow", precision="float32", reason="test")
    return ShippedModel("fp", "artifact", 1, placement, "float32")


def test_no_hook_unless_the_variable_names_one(monkeypatch):
    monkeypatch.delenv(WORKER_HOOK_ENV, raising=False)
    assert worker_hook() is None
    assert worker_options(shipped(), Config(), label_mode="none").after_batch is None
    monkeypatch.setenv(WORKER_HOOK_ENV, " ")
    assert worker_hook() is None


def test_the_named_function_becomes_after_batch(monkeypatch):
    monkeypatch.setenv(WORKER_HOOK_ENV, f"{__name__}:record")
    assert worker_hook() is record
    opts = worker_options(shipped(), Config(), label_mode="none")
    assert opts.after_batch is record
    assert "after_batch" not in repr(opts)


@pytest.mark.parametrize(
    "name", ["record", f"{__name__}:", f"{__name__}:missing", "no_such_module_x:f", "os:sep"]
)
def test_a_name_that_does_not_resolve_is_a_config_error(monkeypatch, name):
    monkeypatch.setenv(WORKER_HOOK_ENV, name)
    with pytest.raises(ConfigError, match=WORKER_HOOK_ENV):
        worker_hook()
