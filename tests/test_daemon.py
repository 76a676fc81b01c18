"""pool3.daemon (Spark's Python daemon importing pyspark installed) and when pool3 sets it."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pool3.daemon import installed_first, installed_package_of
from pool3.jvm.daemon_module import DAEMON_KEY, DAEMON_MODULE, fresh_path, with_daemon_module

REPO_LIB = str(Path(__file__).resolve().parents[1] / "lib")


def _zip(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("placeholder.py", "")
    return str(path)


def test_only_zips_cut_from_a_package_on_the_path_move_behind_it(tmp_path):
    site = tmp_path / "site-packages"
    (site / "pyspark").mkdir(parents=True)
    (site / "pyspark" / "__init__.py").write_text("")
    (site / "py4j").mkdir()
    (site / "py4j" / "version.py").write_text("__version__ = '0.10.9.9'\n")
    lib = site / "pyspark" / "python" / "lib"
    spark_zip = _zip(lib / "pyspark.zip")
    py4j_zip = _zip(lib / "py4j-0.10.9.9-src.zip")
    other_py4j = _zip(lib / "py4j-0.10.9.7-src.zip")  # not the installed version
    distro = _zip(tmp_path / "opt" / "spark" / "python" / "lib" / "pyspark.zip")  # no package
    user = str(tmp_path / "mine")
    path = [spark_zip, py4j_zip, other_py4j, distro, user, str(site)]

    assert installed_package_of(spark_zip, path) == str(site / "pyspark")
    assert installed_package_of(py4j_zip, path) == str(site / "py4j")
    assert installed_package_of(other_py4j, path) is None
    assert installed_package_of(distro, path) is None
    assert installed_first(path) == [other_py4j, distro, user, str(site), spark_zip, py4j_zip]
    # the package's own directory not on the path: nothing moves
    assert installed_first(path[:-1]) == path[:-1]


def _as_pool3_starts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark import SparkContext

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(SparkContext, "_gateway", None)


def test_set_only_for_a_local_jvm_pool3_starts_with_its_own_python(monkeypatch, tmp_path):
    _as_pool3_starts_it(monkeypatch)
    env = {"PYTHONPATH": REPO_LIB}
    local = {"spark.master": "local[2]"}
    assert with_daemon_module(local, env)[DAEMON_KEY] == DAEMON_MODULE
    assert with_daemon_module({"spark.master": "local"}, env)[DAEMON_KEY] == DAEMON_MODULE
    for conf in (
        {},  # master from elsewhere (spark-defaults): not known here
        {"spark.master": "spark://host:7077"},
        {"spark.master": "local-cluster[2,1,1024]"},
        {**local, DAEMON_KEY: "pyspark.daemon"},  # the user's choice wins
        {**local, "spark.python.use.daemon": "false"},
        {**local, "spark.pyspark.python": str(tmp_path / "another-python")},
    ):
        assert with_daemon_module(conf, env) == conf, conf
    assert with_daemon_module(local, {**env, "PYSPARK_PYTHON": "/usr/bin/python0"}) == local
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "12345")  # spark-submit started the JVM
    assert with_daemon_module(local, env) == local


def test_not_set_when_a_new_worker_would_not_find_this_pool3(monkeypatch, tmp_path):
    """The path a worker gets: its working directory, PYTHONPATH, site dirs and their .pth
    lines. pool3 is found there from this repository's lib (PYTHONPATH or a .pth line), not
    from an empty site directory, nor when another copy of pool3 comes first."""
    import site

    _as_pool3_starts_it(monkeypatch)
    local = {"spark.master": "local[2]"}
    empty_site = tmp_path / "site"
    empty_site.mkdir()
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(empty_site)])
    monkeypatch.setattr(site, "ENABLE_USER_SITE", False)
    monkeypatch.chdir(tmp_path)
    assert with_daemon_module(local, {}) == local
    assert with_daemon_module(local, {"PYTHONPATH": REPO_LIB})[DAEMON_KEY] == DAEMON_MODULE
    executor_env = {**local, "spark.executorEnv.PYTHONPATH": REPO_LIB}
    assert with_daemon_module(executor_env, {})[DAEMON_KEY] == DAEMON_MODULE
    (empty_site / "__editable__.pool3.pth").write_text(f"# editable\n{REPO_LIB}\n")
    assert REPO_LIB in fresh_path(local, {})
    assert with_daemon_module(local, {})[DAEMON_KEY] == DAEMON_MODULE
    copy = tmp_path / "old" / "pool3"
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_text("")
    assert with_daemon_module(local, {"PYTHONPATH": str(copy.parent)}) == local


def test_the_sessions_workers_import_the_installed_pyspark_under_pool3s_daemon(
    spark: SparkSession,
):
    """The test session (local[2], built by build_session in this process): its daemon runs
    pool3.daemon, its workers import pyspark from the installed package, and a Python job's
    results are those of any worker."""
    from pyspark import SparkContext

    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        pytest.fail("the test session must be started by pool3, not by spark-submit")
    assert SparkContext._gateway is not None
    assert spark.sparkContext.getConf().get(DAEMON_KEY, None) == DAEMON_MODULE

    def probe(frames):
        import pandas as pd
        import pyspark

        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            parent = handle.read().replace(b"\0", b" ").decode()
        for frame in frames:
            yield pd.DataFrame(
                {"id": frame["id"] * 2, "pyspark": pyspark.__file__, "daemon": parent}
            )

    rows = (
        spark.range(0, 8, numPartitions=2)
        .mapInPandas(probe, "id long, pyspark string, daemon string")
        .collect()
    )
    assert sorted(r["id"] for r in rows) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert {".zip" in r["pyspark"] for r in rows} == {False}, rows[0]["pyspark"]
    assert all(f"-m {DAEMON_MODULE}" in r["daemon"] for r in rows), rows[0]["daemon"]
    assert all(r["daemon"].split()[0] == sys.executable for r in rows), rows[0]["daemon"]
