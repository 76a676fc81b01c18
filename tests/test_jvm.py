"""pool3.jvm: the driver JVM's class-data archive, where it lives and when it is used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clirun import fresh_python
from pool3.jvm.archive import (
    QUIET,
    archive_option,
    archive_path,
    build_archive,
    with_jvm_archive,
)

JAVA = shutil.which("java") or "java"

pytestmark = pytest.mark.spark  # java itself: its version names the archive


def test_the_archive_is_named_by_java_and_sparks_jars(tmp_path, monkeypatch):
    path = archive_path(JAVA, home=str(tmp_path))
    assert path.parent == tmp_path / "jvm" and path.suffix == ".jsa"
    assert path == archive_path(JAVA, home=str(tmp_path))  # stable
    import pyspark

    assert f"spark-{pyspark.__version__}-" in path.name
    # another Spark (other jars) gets another archive
    other = tmp_path / "spark"
    (other / "jars").mkdir(parents=True)
    (other / "jars" / "only.jar").write_bytes(b"x")
    monkeypatch.setenv("SPARK_HOME", str(other))
    at_other = archive_path(JAVA, home=str(tmp_path))
    assert at_other != path
    # the same jars at another path (another venv) are another class path
    shutil.copytree(other, tmp_path / "copy")
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "copy"))
    assert archive_path(JAVA, home=str(tmp_path)) not in (path, at_other)


def test_the_option_only_for_an_archive_that_exists_and_fits(tmp_path):
    assert archive_option(JAVA, {}, home=str(tmp_path)) == ""  # none written yet
    path = archive_path(JAVA, home=str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stand-in: only its presence is read here")
    option = f"-XX:SharedArchiveFile={path} {QUIET}"
    assert archive_option(JAVA, {}, home=str(tmp_path)) == option
    assert archive_option(JAVA, {"spark.driver.extraClassPath": "/x.jar"}, home=str(tmp_path)) == ""
    own = {"spark.driver.extraJavaOptions": "-XX:SharedArchiveFile=/mine.jsa"}
    assert archive_option(JAVA, own, home=str(tmp_path)) == ""
    conf = with_jvm_archive({"spark.driver.extraJavaOptions": "-Dx=1"}, JAVA, home=str(tmp_path))
    from pyspark import SparkContext

    if SparkContext._gateway is None:  # this process has not started its JVM yet
        assert conf["spark.driver.extraJavaOptions"] == f"-Dx=1 {option}"
    else:  # a running JVM cannot take it: nothing is added
        assert conf["spark.driver.extraJavaOptions"] == "-Dx=1"


@pytest.mark.slow
def test_build_an_archive_that_a_spark_driver_maps(tmp_path):
    """Written by a child process, then used by a new session with ``-Xshare:on``: that JVM
    refuses to start unless it maps the archive, so starting proves it fits."""
    path, seconds = build_archive(JAVA, home=str(tmp_path))
    assert path.is_file() and path.stat().st_size > 20_000_000 and seconds > 0
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    script = (
        "from pool3.config import load_config\n"
        "from pool3.session import build_session\n"
        "c = load_config('local', overrides={'spark.master': 'local[1]', "
        "'spark.extra': {'spark.ui.enabled': 'false', "
        "'spark.driver.extraJavaOptions': '-Xshare:on'}})\n"
        "s = build_session(c)\n"
        "print('OPTIONS', s.conf.get('spark.driver.extraJavaOptions'))\n"
        "print('ROWS', s.range(10).count())\n"
        "s.stop()\n"
    )
    out = fresh_python(script, env={"POOL3_HOME": str(tmp_path)})
    assert f"-XX:SharedArchiveFile={path}" in out and "ROWS 10" in out
    assert Path(path).is_file()
