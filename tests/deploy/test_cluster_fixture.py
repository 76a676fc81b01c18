"""spark-submit.sh against a real standalone cluster started by tests/cluster.py.

The smoke application (tests/apps/cluster_smoke.py) imports ``pool3`` inside the
executors' Python workers. It is submitted from a directory outside the repository
without PYTHONPATH, so the only way the executors can get ``pool3`` from the zip is
``--py-files build/pool3.zip`` as spark-submit.sh ships it (pool3 is also installed
editable in the venv: the zip must win over it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cluster import StandaloneCluster
from paths import REPO

SMOKE_APP = REPO / "tests" / "apps" / "cluster_smoke.py"

pytestmark = pytest.mark.cluster


def submit_smoke(
    master_url: str, cwd: Path, *app_args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run spark-submit.sh with the smoke app; return the process and its JSON report."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_PYTHON")}
    env["POOL3_PYTHON"] = sys.executable
    # The executor connects back to the driver: keep that on loopback too.
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    script = str(REPO / "spark-submit.sh")
    proc = subprocess.run(
        [script, "--master", master_url, "--app", str(SMOKE_APP), "--", *app_args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else None
    return proc, report


def test_fixture_has_one_alive_worker(standalone_cluster: StandaloneCluster) -> None:
    state = standalone_cluster.master_state()
    alive = [w for w in state["workers"] if w["state"] == "ALIVE"]
    assert len(alive) == 1, state["workers"]
    assert alive[0]["cores"] == 2
    assert standalone_cluster.master_url == state["url"]
    assert (standalone_cluster.log_dir / "master.log").is_file()


def test_executors_import_pool3_from_shipped_zip(
    standalone_cluster: StandaloneCluster,
    tmp_path: Path,
) -> None:
    # One submission checks both the shipping and the exit code: a job that exits 3
    # must make spark-submit.sh exit 3 (0 could come from a script that drops it).
    started = time.monotonic()
    proc, report = submit_smoke(standalone_cluster.master_url, tmp_path, "--exit-code", "3")
    print(f"smoke job took {time.monotonic() - started:.1f} s")
    assert report is not None, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.returncode == 3, proc.stderr[-4000:]

    assert report["master"] == standalone_cluster.master_url
    assert report["n_executors"] >= 1
    rows = report["rows"]
    assert sorted(r["id"] for r in rows) == list(range(8))
    app_dir = standalone_cluster.log_dir / "work" / report["app_id"]
    for row in rows:
        # Python workers run in the executor's directory, work/<app-id>/<executor-id>,
        # where Spark fetched the --py-files; pool3 comes from inside that zip, not
        # from the editable install in lib/.
        cwd = Path(row["cwd"])
        assert cwd.parent == app_dir, row
        module = Path(os.path.normpath(cwd / row["pool3_file"]))
        assert module.parts[-3:] == ("pool3.zip", "pool3", "__init__.py"), row
        assert module.parents[1].is_file(), row
        assert not module.is_relative_to(REPO / "lib"), row

    completed = [app["id"] for app in standalone_cluster.master_state()["completedapps"]]
    assert report["app_id"] in completed
