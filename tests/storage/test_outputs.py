"""pool3.storage (outputs, commit, fs): the output life cycle on real local dirs, real session."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pyspark
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from pool3.config import load_config
from pool3.errors import ConfigError, InputError, OutputError
from pool3.storage import outputs as io


def frame(spark: SparkSession, labels: list[str]) -> DataFrame:
    return spark.createDataFrame(
        [(i, label) for i, label in enumerate(labels)], "id long, label string"
    )


def write_and_commit(
    spark: SparkSession,
    path: str | Path,
    df: DataFrame,
    *,
    mode: str = "error",
    run_id: str | None = None,
) -> io.OutputTarget:
    target = io.prepare_output(spark, str(path), mode=mode, run_id=run_id)
    df.write.parquet(target.staging)
    io.commit_output(spark, target, manifest={"run_id": run_id, "rows": df.count()})
    return target


def test_new_output_is_staged_hidden_then_committed_with_manifest(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "nested" / "features"
    target = io.prepare_output(spark, str(out), mode="error")
    assert target.final == str(out) and target.existing == "none"
    assert Path(target.staging).parent == out.parent  # a sibling: same file system, cheap rename
    assert Path(target.staging).name.startswith(".features.pool3-staging-")
    assert not Path(target.staging).exists()  # Spark's default mode creates it

    df = frame(spark, ["boot", "skate", "boot"])
    df.write.parquet(target.staging)
    io.commit_output(
        spark,
        target,
        manifest={"command": "featurize", "count": np.int64(3)},
        extra_files={"_report.txt": "3 images\n"},
    )

    assert io.is_complete(spark, str(out))
    assertDataFrameEqual(spark.read.parquet(str(out)), df)
    manifest = io.read_json(spark, str(out / io.MANIFEST_NAME))
    assert manifest["command"] == "featurize" and manifest["count"] == 3
    assert manifest["output"] == str(out) and manifest["committed_at"].endswith("+00:00")
    assert (out / "_report.txt").read_text() == "3 images\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["features"]  # no staging left


def test_visible_extra_file_next_to_parquet_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    target = io.prepare_output(spark, str(tmp_path / "out"), mode="error")
    frame(spark, ["a"]).write.parquet(target.staging)
    with pytest.raises(ValueError, match=r"name them \['_report.html'\]"):
        io.commit_output(spark, target, manifest={}, extra_files={"report.html": "<p>"})
    assert not (tmp_path / "out").exists()
    report_only = io.prepare_output(spark, str(tmp_path / "report"), mode="error")
    io.commit_output(spark, report_only, manifest={}, extra_files={"report.html": "<p>"})
    assert (tmp_path / "report" / "report.html").read_text() == "<p>"
    assert io.is_complete(spark, str(tmp_path / "report"))


def test_mode_error_refuses_complete_output_and_keeps_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    write_and_commit(spark, out, frame(spark, ["a"]))
    before = (out / io.MANIFEST_NAME).read_text()
    with pytest.raises(OutputError, match=r"exists; use --mode overwrite .*or another --run-id"):
        io.prepare_output(spark, str(out), mode="error")
    assert (out / io.MANIFEST_NAME).read_text() == before


def test_overwrite_replaces_complete_output_only_on_commit(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    old = frame(spark, ["old"])
    write_and_commit(spark, out, old)
    target = io.prepare_output(spark, str(out), mode="overwrite")
    assert target.existing == "complete"
    new = frame(spark, ["new", "new"])
    new.write.parquet(target.staging)
    assertDataFrameEqual(spark.read.parquet(str(out)), old)  # still readable until commit
    io.commit_output(spark, target, manifest={})
    assertDataFrameEqual(spark.read.parquet(str(out)), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # trash removed


def test_incomplete_output_of_failed_run_is_replaced(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    (out / "_temporary" / "0").mkdir(parents=True)
    (out / "part-00000-abc.snappy.parquet").write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="pool3.storage.outputs"):
        target = io.prepare_output(spark, str(out), mode="error")
    assert target.existing == "incomplete" and not io.is_complete(spark, str(out))
    assert any("without _SUCCESS" in r.getMessage() for r in caplog.records)
    df = frame(spark, ["x"])
    df.write.parquet(target.staging)
    io.commit_output(spark, target, manifest={})
    assertDataFrameEqual(spark.read.parquet(str(out)), df)
    assert not (out / "_temporary").exists()


def test_incomplete_dir_with_foreign_files_is_left_alone(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match=r"thesis.tex.*left alone"):
        io.prepare_output(spark, str(out), mode="error")
    assert (out / "thesis.tex").read_text() == "precious"


def test_run_ids_are_independent_and_a_rerun_replaces_its_own(
    spark: SparkSession, tmp_path: Path
) -> None:
    base = tmp_path / "runs"
    a = write_and_commit(spark, base, frame(spark, ["a"]), run_id="2026-05-09")
    b = write_and_commit(spark, base, frame(spark, ["b", "b"]), run_id="nightly_2")
    assert a.final == str(base / "run_id=2026-05-09") and b.final == str(base / "run_id=nightly_2")
    b_manifest = (base / "run_id=nightly_2" / io.MANIFEST_NAME).read_text()

    again = frame(spark, ["a2", "a2", "a2"])
    write_and_commit(spark, base, again, run_id="2026-05-09")  # mode error: same id re-run
    assertDataFrameEqual(spark.read.parquet(a.final), again)
    assert (base / "run_id=nightly_2" / io.MANIFEST_NAME).read_text() == b_manifest
    assert sorted(p.name for p in base.iterdir()) == ["run_id=2026-05-09", "run_id=nightly_2"]

    with pytest.raises(OutputError, match="run_id="):  # the parent holds runs: not replaced
        io.prepare_output(spark, str(base), mode="error")
    for bad in ["../x", "a/b", "", "a b"]:
        with pytest.raises(ConfigError, match="invalid run id"):
            io.prepare_output(spark, str(base), mode="error", run_id=bad)


def test_staging_is_invisible_to_readers_of_the_parent(spark: SparkSession, tmp_path: Path) -> None:
    base = tmp_path / "table"
    write_and_commit(spark, base, frame(spark, ["done"]), run_id="A")
    pending = io.prepare_output(spark, str(base), mode="error", run_id="B")
    frame(spark, ["pending", "pending"]).write.parquet(pending.staging)
    assert Path(pending.staging).name.startswith(".")
    rows = spark.read.parquet(str(base)).select("label", "run_id").collect()
    assert [(r.label, r.run_id) for r in rows] == [("done", "A")]


def test_abort_removes_staging_and_stale_staging_is_cleaned(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    target = io.prepare_output(spark, str(out), mode="error")
    frame(spark, ["x"]).write.parquet(target.staging)
    io.abort_output(spark, target)
    io.abort_output(spark, target)  # nothing left: still fine
    assert not Path(target.staging).exists() and not out.exists()

    stale = tmp_path / ".out.pool3-staging-0123456789ab"
    (stale / "sub").mkdir(parents=True)
    other = tmp_path / ".elsewhere.pool3-staging-0123456789ab"
    other.mkdir()
    io.prepare_output(spark, str(out), mode="error")
    assert not stale.exists() and other.exists()  # only this output's leftovers


def test_unwritable_parent_or_file_target_raise_output_error(
    spark: SparkSession, tmp_path: Path
) -> None:
    regular = tmp_path / "a-file"
    regular.write_text("x")
    # Tests may run as root, where chmod does not stop writes; a path under a file cannot exist.
    with pytest.raises(OutputError, match="cannot write to"):
        io.prepare_output(spark, str(regular / "out"), mode="overwrite")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        io.prepare_output(spark, str(regular), mode="overwrite")
    with pytest.raises(ConfigError, match="invalid output mode"):
        io.prepare_output(spark, str(tmp_path / "x"), mode="append")


def test_file_uri_output_round_trip(spark: SparkSession, tmp_path: Path) -> None:
    uri = (tmp_path / "out").as_uri()  # file:///...
    df = frame(spark, ["u"])
    target = write_and_commit(spark, uri, df)
    assert target.final == f"file:{tmp_path / 'out'}"
    assert io.is_complete(spark, uri)
    assertDataFrameEqual(spark.read.parquet(uri), df)


def test_check_input(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a_1.jpg").write_bytes(b"\xff\xd8")
    io.check_input(spark, str(tmp_path / "imgs"))
    io.check_input(spark, str(tmp_path / "imgs" / "a_1.jpg"))
    with pytest.raises(InputError, match="does not exist"):
        io.check_input(spark, str(tmp_path / "missing"))
    # literal, never a glob: a folder named with glob characters is that folder
    (tmp_path / "fm [2019] *").mkdir()
    io.check_input(spark, str(tmp_path / "fm [2019] *"))
    with pytest.raises(InputError, match="does not exist"):
        io.check_input(spark, str(tmp_path / "imgs" / "*.jpg"))


def test_text_and_json_helpers(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "d" / "m.json")
    io.write_text(spark, path, json.dumps({"é": [1, 2]}))
    assert io.read_json(spark, path) == {"é": [1, 2]}
    assert io.exists(spark, path) and io.list_files(spark, str(tmp_path / "d")) == [f"file:{path}"]
    io.write_text(spark, path, "[1]")
    with pytest.raises(InputError, match="expected an object"):
        io.read_json(spark, path)
    io.write_text(spark, path, "{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        io.read_json(spark, path)
    with pytest.raises(InputError, match="cannot read JSON"):
        io.read_json(spark, str(tmp_path / "missing.json"))


def test_build_run_manifest_is_json_and_redacted() -> None:
    config = load_config(overrides={"spark.extra.spark.hadoop.fs.s3a.secret.key": "S"}, env={})
    manifest = io.build_run_manifest(
        run_id="r1",
        command="featurize",
        inputs={"images": Path("/data/imgs")},
        counts={"images": np.int64(12), "failed": 0},
        durations={"featurize": 1.23456},
        config=config,
        model_fingerprint="sha256:abc",
        extra={"error_rate": float("nan")},
    )
    text = json.dumps(manifest, allow_nan=False)
    assert '"S"' not in text
    assert manifest["config"]["spark"]["extra"]["spark.hadoop.fs.s3a.secret.key"] == "***"
    assert manifest["counts"] == {"images": 12, "failed": 0}
    assert manifest["inputs"] == {"images": "/data/imgs"}
    assert manifest["durations_s"] == {"featurize": 1.235}
    assert manifest["extra"] == {"error_rate": None}
    versions = manifest["versions"]
    assert versions["pyspark"] == pyspark.__version__ and versions["numpy"] == np.__version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert manifest["host"] and manifest["created_at"].endswith("+00:00")


def test_abort_deletes_staging_again_when_a_dying_task_recreates_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Spark kills a cancelled job's tasks asynchronously: a task file written into staging
    just after its deletion must not survive the abort (the SIGTERM test's race, forced)."""
    import threading
    import time

    target = io.prepare_output(spark, str(tmp_path / "out"), mode="error")
    staging = Path(target.staging.removeprefix("file:"))
    (staging / "_temporary").mkdir(parents=True)

    def late_task() -> None:
        while staging.exists():
            time.sleep(0.01)
        time.sleep(0.3)
        (staging / "_temporary" / "0").mkdir(parents=True)
        (staging / "_temporary" / "0" / "part-00000.parquet").write_bytes(b"late")

    writer = threading.Thread(target=late_task)
    writer.start()
    io.abort_output(spark, target)
    writer.join()
    assert not staging.exists()
    assert not list(tmp_path.glob(".out.pool3-*"))  # lock released too


def test_default_fs_comes_from_core_site_and_scheme_less_paths_go_there(tmp_path, monkeypatch):
    from pool3.storage import fs

    site = tmp_path / "core-site.xml"
    site.write_text(
        "<configuration><property><name>fs.defaultFS</name>"
        "<value>hdfs://nn:8020</value></property></configuration>"
    )
    assert fs.core_site_default_fs({"HADOOP_CONF_DIR": str(tmp_path)}) == "hdfs://nn:8020"
    assert fs.core_site_default_fs({"HADOOP_CONF_DIR": str(tmp_path / "none")}) is None
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    monkeypatch.setattr("getpass.getuser", lambda: "ana")
    assert fs.on_default_fs(None, "/data/x") == "hdfs://nn:8020/data/x"
    assert fs.on_default_fs(None, "x/y") == "hdfs://nn:8020/user/ana/x/y"
    assert fs.on_default_fs(None, "s3a://b/k") == "s3a://b/k"
    monkeypatch.delenv("HADOOP_CONF_DIR")
    monkeypatch.delenv("HADOOP_HOME", raising=False)
    assert fs.on_default_fs(None, "/data/x") == "/data/x"
