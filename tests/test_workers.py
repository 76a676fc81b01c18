"""The Python a session's workers run: a notebook kernel's venv without the venv on PATH.

The subprocess tests run tests/apps/venv_kernel.py with the venv's Python (this one) and a
``PATH`` whose ``python3`` is a system Python without pool3, ``PYSPARK_PYTHON`` unset: as
Jupyter starts a venv kernel. Before the fix, :func:`pool3.with_labels` died there with a
worker's ``ModuleNotFoundError: No module named 'pool3'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cluster import StandaloneCluster
from paths import APPS
from pool3.workers import WORKER_MODULES, can_run_pool3, same_interpreter

SYSTEM_PYTHON = Path("/usr/bin/python3")
WARNING = "which cannot run pool3"
# the fixtures here that run a Spark session in a subprocess (tests/conftest.py)
FIXTURE_MARKERS = {"kernel": ("spark",)}


@pytest.fixture(scope="module")
def bare_python3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``python3`` is a system Python without pool3, of this one's version
    (so that only pool3's absence, not pyspark's version check, stops its workers)."""
    if not SYSTEM_PYTHON.is_file() or can_run_pool3(str(SYSTEM_PYTHON)):
        pytest.skip(f"{SYSTEM_PYTHON} is missing or can run pool3 itself")
    version = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if version != [str(v) for v in sys.version_info[:2]]:
        pytest.skip(f"{SYSTEM_PYTHON} is Python {'.'.join(version)}, not this one's version")
    folder = tmp_path_factory.mktemp("bare-bin")
    (folder / "python3").symlink_to(SYSTEM_PYTHON)
    return folder


def kernel_env(bare_bin: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "PYTHONPATH"))}
    return {**env, "PATH": f"{bare_bin}{os.pathsep}{os.environ['PATH']}", **extra}


def run_kernel(env: dict[str, str], cwd: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run the app; its JSON report and its stderr."""
    proc = subprocess.run(
        [sys.executable, str(APPS / "venv_kernel.py"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(lines[-1]), proc.stderr


def test_one_interpreter_is_one_folder_and_one_file(tmp_path):
    here = sys.executable
    assert same_interpreter(here, here)
    sibling = Path(here).with_name("python3")
    if sibling.exists() and os.path.samefile(sibling, here):
        assert same_interpreter(str(sibling), here)  # venv/bin/python3 is venv/bin/python
    base = os.path.realpath(here)
    if os.path.dirname(base) != os.path.dirname(os.path.abspath(here)):
        # a venv's python links to its base interpreter, which lacks the venv's packages
        assert os.path.samefile(base, here)
        assert not same_interpreter(base, here)
    link = tmp_path / "python3"
    link.symlink_to(here)
    assert not same_interpreter(str(link), here)  # another folder: another environment
    assert not same_interpreter(str(tmp_path / "missing"), here)
    assert not same_interpreter("python3-that-is-nowhere", here)


def test_this_interpreter_can_run_pool3_and_others_are_asked(bare_python3, tmp_path):
    assert can_run_pool3(sys.executable)
    assert not can_run_pool3(str(bare_python3 / "python3"))
    assert not can_run_pool3(str(tmp_path / "missing"))
    assert WORKER_MODULES[0] == "pool3"


@pytest.fixture(scope="module")
def kernel(bare_python3, tmp_path_factory) -> tuple[dict[str, Any], str]:
    """One notebook session on local[1]: two API calls, then the cluster check with the
    system Python and with a missing one as the workers' interpreter."""
    cwd = tmp_path_factory.mktemp("kernel")
    missing = str(cwd / "no-such-python")
    return run_kernel(
        kernel_env(bare_python3), cwd, "--probe", str(SYSTEM_PYTHON), "--probe", missing
    )


def test_a_venv_kernel_without_the_venv_on_path_just_works(kernel, bare_python3):
    report, stderr = kernel
    assert report["before"] == "python3"  # Spark's default: python3 from PATH
    assert report["local_before"] is False  # that python3 is not this interpreter
    assert "error" not in report, report
    assert report["labels"] == [["bag", "shirt"]] * 2
    assert report["after"] == sys.executable
    assert report["local_after"] is True
    assert stderr.count(WARNING) == 1, stderr[-4000:]  # once, not once per call
    warning = next(line for line in stderr.splitlines() if WARNING in line)
    assert f"python3 = {bare_python3 / 'python3'}" in warning
    assert f"PYSPARK_PYTHON={sys.executable}" in warning
    assert "ModuleNotFoundError" not in stderr


def test_workers_elsewhere_without_pool3_get_one_clear_error(kernel):
    probes = kernel[0]["probes"]
    lacking = probes[str(SYSTEM_PYTHON)]
    assert lacking.startswith("ConfigError: the Python workers of local[1] run "), lacking
    # the worker's own sys.executable, and everything it lacks (numpy too: a bare system Python)
    assert "which cannot import pool3, numpy, pandas, pyarrow:" in lacking, lacking
    assert "PYSPARK_PYTHON" in lacking and "--py-files" in lacking, lacking
    missing = next(v for k, v in probes.items() if k.endswith("no-such-python"))
    assert missing.startswith("ConfigError: the Python workers of local[1] could not run "), missing
    assert 'java.io.IOException: Cannot run program "' in missing, missing
    assert "no-such-python" in missing and "PYSPARK_PYTHON" in missing, missing
    assert "\n" not in missing and "\tat " not in missing, missing  # no raw traceback


@pytest.mark.cluster
@pytest.mark.slow  # ~20 s: a driver JVM, an executor and its first Python worker
def test_a_cluster_whose_workers_lack_pool3_gives_one_clear_error(
    standalone_cluster: StandaloneCluster, bare_python3, tmp_path
):
    bare = str(bare_python3 / "python3")  # what the executors run, whatever their PATH
    env = kernel_env(bare_python3, PYSPARK_PYTHON=bare, SPARK_LOCAL_IP="127.0.0.1")
    report, stderr = run_kernel(env, tmp_path, "--master", standalone_cluster.master_url)
    assert report["before"] == bare
    assert "labels" not in report
    assert report["error"]["type"] == "ConfigError", report
    message, master = report["error"]["message"], standalone_cluster.master_url
    assert message.startswith(f"the Python workers of {master} run "), message
    assert "which cannot import pool3" in message, message
    assert "ModuleNotFoundError" not in stderr  # the probe itself never needed pool3
