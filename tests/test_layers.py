"""The test layers (tests/conftest.py): markers follow fixtures; ``make test-fast`` needs no JVM.

The tests of the current run are checked in process. One ``pytest --collect-only`` subprocess
with ``make test-fast``'s marker expression (read from the Makefile) and the :mod:`layerprobe`
plugin gives every test's fixtures and markers, both those ``test-fast`` selects and those it
leaves out (a second collection of the suite: ``heavy``, so not in ``test-fast`` itself).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from conftest import FIXTURE_MARKERS
from paths import REPO

#: the fixtures that mean a JVM or a server, and the marker each test using one must carry
NEEDS = {
    "spark": "spark",
    "standalone_cluster": "cluster",
    "connect_server": "connect",
    "mlflow_server": "mlflow",
}


def make_target_markers(target: str) -> str:
    """The ``-m`` expression of ``make TARGET`` (through a Makefile variable if it uses one)."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(rf"^{target}:.*\n\t.*pytest -m \"([^\"]+)\"", makefile, re.MULTILINE)
    assert recipe, f"no pytest -m recipe for {target} in the Makefile"
    expr = recipe.group(1)
    variable = re.fullmatch(r"\$\((\w+)\)", expr)
    if variable:
        found = re.search(rf"^{variable.group(1)}\s*:?=\s*(.+)$", makefile, re.MULTILINE)
        assert found, f"{expr} is not set in the Makefile"
        expr = found.group(1).strip()
    return expr


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """``make test-fast``'s collection: ``selected`` and ``deselected`` tests."""
    out = tmp_path_factory.mktemp("layers") / "probe.json"
    env = {**os.environ, "POOL3_LAYER_PROBE": str(out)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), env.get("PYTHONPATH")]))
    args = ["--collect-only", "-q", "-p", "layerprobe", "-p", "no:cacheprovider"]
    args += ["-m", make_target_markers("test-fast"), str(REPO / "tests")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_fast_target_leaves_out_every_layer_that_needs_a_jvm_or_a_server() -> None:
    fast = make_target_markers("test-fast")
    for marker in ("spark", "cluster", "connect", "mlflow", "heavy", "slow"):
        assert f"not {marker}" in fast, fast
    assert make_target_markers("test") == "not slow"  # the default run: everything but slow


def test_the_tests_of_this_run_carry_the_markers_of_their_fixtures(
    request: pytest.FixtureRequest,
) -> None:
    items = request.session.items
    assert request.node in items
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        for fixture, marker in NEEDS.items():
            if fixture in item.fixturenames:
                assert marker in markers, f"{item.nodeid} uses {fixture} without {marker}"


@pytest.mark.heavy
def test_every_test_using_a_jvm_or_server_fixture_carries_its_marker(collected) -> None:
    tests = collected["selected"] + collected["deselected"]
    assert {f for t in tests for f in t["fixtures"]} >= FIXTURE_MARKERS.keys()  # names still real
    for fixture, marker in NEEDS.items():
        users = [t for t in tests if fixture in t["fixtures"]]
        assert users, f"no test uses {fixture}"
        unmarked = [t["nodeid"] for t in users if marker not in t["markers"]]
        assert not unmarked, f"use {fixture} without the {marker} marker: {unmarked}"
    # a cluster or a Connect server is a JVM as well
    jvm = [t for t in tests if {"cluster", "connect"} & set(t["markers"])]
    assert all("spark" in t["markers"] for t in jvm)


@pytest.mark.heavy
def test_the_fast_selection_uses_no_jvm_or_server_fixture(collected) -> None:
    selected, deselected = collected["selected"], collected["deselected"]
    assert selected and deselected
    for test in selected:
        assert not NEEDS.keys() & set(test["fixtures"]), test
        assert not {"spark", "cluster", "connect", "mlflow", "heavy", "slow"} & set(
            test["markers"]
        ), test
    # what the module-level marks of subprocess JVM tests leave out
    left_out = {t["nodeid"] for t in deselected}
    assert any(n.startswith("tests/commands/test_faults.py::") for n in left_out)
    assert any(n.startswith("tests/test_cli.py::test_missing_input_exits_3") for n in left_out)
    this_module = {t["nodeid"] for t in selected if t["nodeid"].startswith("tests/test_layers.py")}
    assert (
        "tests/test_layers.py::test_the_fast_target_leaves_out_every_layer_that_needs_a_jvm_"
        "or_a_server" in this_module
    )
