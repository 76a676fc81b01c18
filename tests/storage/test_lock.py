"""pool3.storage.lock: one owner per output, on real local dirs with the real session.

Owners that are "gone" are real: a process that ran and ended (its pid), this process under
a start time that is not its own (a reused pid), a host whose heartbeat stopped. Two runs
racing through the real command are in tests/commands/test_concurrent_runs.py.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from pool3.errors import OutputError
from pool3.storage import outputs as io
from pool3.storage.fs import create_new
from pool3.storage.lock import OutputBusy, Owner, is_run_entry, process_space

TOKEN = "deadbeef00000001"


def lock_file(parent: Path, name: str) -> Path:
    return parent / f".{name}.pool3-lock"


def plant_lock(parent: Path, name: str, **fields: object) -> dict[str, object]:
    """A lock as another run would have written it (``fields`` override the defaults)."""
    now_ms = int(time.time() * 1000)
    doc: dict[str, object] = {
        "token": TOKEN,
        "host": socket.gethostname(),
        "space": process_space(),
        "pid": os.getpid(),
        "pid_start": None,
        "command": "featurize",
        "run_id": None,
        "started_at": "2026-12-01T00:00:00+00:00",
        "started_ms": now_ms,
        **fields,
    }
    lock_file(parent, name).write_text(json.dumps(doc))
    return doc


def beat(parent: Path, name: str, token: str, ms: int) -> Path:
    path = parent / f".{name}.pool3-beat-{token}-{ms:013d}"
    path.touch()
    return path


def entries(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def ended_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_on_a_live_output_exits_4_naming_the_holder(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = io.prepare_output(spark, str(out), mode="overwrite", command="featurize", run_id="r1")
    holder = rf"pool3 featurize \(run id r1\), pid {os.getpid()} on {socket.gethostname()}"
    for mode in ("error", "overwrite", "incremental"):
        with pytest.raises(OutputBusy, match=holder) as refused:
            io.prepare_output(spark, str(out), mode=mode, run_id="r1")
        assert refused.value.exit_code == 4
    io.prepare_output(spark, str(out), mode="error", run_id="r2").lock.release()  # another id
    data = spark.createDataFrame([(1,)], "x int")
    data.write.parquet(first.staging)
    io.commit_output(spark, first, manifest={})  # commit ends the ownership
    assert entries(out) == ["run_id=r1"]  # nothing of r2, which wrote nothing
    second = io.prepare_output(spark, str(out), mode="overwrite", run_id="r1")
    io.abort_output(spark, second)
    assertDataFrameEqual(spark.read.parquet(first.final), data)
    assert entries(out) == ["run_id=r1"]


def test_dead_local_owner_is_taken_over_and_its_leftovers_removed(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid = ended_pid()
    plant_lock(tmp_path, "out", pid=pid, pid_start="12345")
    staging = tmp_path / f".out.pool3-staging-{TOKEN}"
    (staging / "_temporary").mkdir(parents=True)
    (staging / "part-00000.parquet").write_bytes(b"half")
    beat(tmp_path, "out", TOKEN, int(time.time() * 1000))
    (tmp_path / ".other.pool3-staging-0123456789abcdef").mkdir()  # another output's: kept
    with caplog.at_level(logging.WARNING, logger="pool3.storage"):
        target = io.prepare_output(spark, str(tmp_path / "out"), mode="error")
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert f"its process {pid} on this host has ended" in messages
    assert f"removing {staging}, left by a run that is gone" in messages
    token = target.lock.owner.token
    assert json.loads(lock_file(tmp_path, "out").read_text())["token"] == token
    mine = [e for e in entries(tmp_path) if e.startswith(".out.")]
    assert mine == [".out.pool3-beat-" + token + mine[0][-14:], ".out.pool3-lock"]
    io.abort_output(spark, target)
    assert entries(tmp_path) == [".other.pool3-staging-0123456789abcdef"]


def test_reused_pid_is_not_taken_for_the_owner(spark: SparkSession, tmp_path: Path) -> None:
    plant_lock(tmp_path, "out", pid=os.getpid(), pid_start="1")  # this pid, another start
    target = io.prepare_output(spark, str(tmp_path / "out"), mode="error")
    io.abort_output(spark, target)
    plant_lock(tmp_path, "out", pid=os.getpid(), pid_start=Owner.me("x", None).pid_start)
    with pytest.raises(OutputBusy, match="being written by pool3 featurize"):
        io.prepare_output(spark, str(tmp_path / "out"), mode="error")


def test_same_host_name_in_another_pid_namespace_is_judged_by_heartbeat(
    spark: SparkSession, tmp_path: Path
) -> None:
    # e.g. two containers with host networking: one host name, pids that mean other things
    plant_lock(tmp_path, "out", pid=ended_pid(), space="another-boot/pid:[1]")
    beat(tmp_path, "out", TOKEN, int(time.time() * 1000))
    with pytest.raises(OutputBusy, match="being written by"):
        io.prepare_output(spark, str(tmp_path / "out"), mode="error")


def test_run_entries_are_recognised() -> None:
    assert is_run_entry(".out.pool3-lock") and is_run_entry(".a b.pool3-staging-0123abcd")
    assert is_run_entry(".run_id=x.pool3-beat-0123456789abcdef-0001796188502474")
    assert not is_run_entry("out.pool3-lock") and not is_run_entry(".out.pool3-staging-")
    assert not is_run_entry(".hidden") and not is_run_entry(".x.pool3-locker")


def test_other_host_owner_is_live_until_its_heartbeat_is_stale(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now_ms = int(time.time() * 1000)
    plant_lock(tmp_path, "out", host="worker-7", pid=1, started_ms=now_ms - 3_600_000)
    fresh = beat(tmp_path, "out", TOKEN, now_ms - 2_000)
    with pytest.raises(OutputBusy, match="pid 1 on worker-7"):
        io.prepare_output(spark, str(tmp_path / "out"), mode="error", lock_timeout_s=10)
    fresh.rename(tmp_path / fresh.name.replace(f"{now_ms - 2_000:013d}", f"{now_ms - 30_000:013d}"))
    with caplog.at_level(logging.WARNING, logger="pool3.storage"):
        target = io.prepare_output(spark, str(tmp_path / "out"), mode="error", lock_timeout_s=10)
    assert any("more than output.lock_timeout_seconds=10" in r.getMessage() for r in caplog.records)
    io.abort_output(spark, target)
    assert entries(tmp_path) == []


def test_heartbeat_is_renewed_keeping_one_file(spark: SparkSession, tmp_path: Path) -> None:
    target = io.prepare_output(spark, str(tmp_path / "out"), mode="error", lock_timeout_s=5)

    def beats() -> list[str]:
        return [e for e in entries(tmp_path) if ".pool3-beat-" in e]

    first = beats()
    time.sleep(2.5)  # beats every max(1 s, timeout / 10)
    later = beats()
    assert len(first) == len(later) == 1 and first != later
    io.abort_output(spark, target)
    assert entries(tmp_path) == []


def test_run_that_lost_its_lock_commits_nothing(spark: SparkSession, tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = spark.createDataFrame([("old",)], "label string")
    first = io.prepare_output(spark, str(out), mode="error")
    old.write.parquet(first.staging)
    io.commit_output(spark, first, manifest={})
    target = io.prepare_output(spark, str(out), mode="overwrite")
    spark.createDataFrame([("new",)], "label string").write.parquet(target.staging)
    taken = plant_lock(tmp_path, "out", token="feedface00000002", host="worker-7")
    with pytest.raises(OutputError, match=r"lost the lock of .*nothing is committed"):
        io.commit_output(spark, target, manifest={})
    io.abort_output(spark, target)
    assertDataFrameEqual(spark.read.parquet(str(out)), old)
    assert json.loads(lock_file(tmp_path, "out").read_text()) == taken  # not ours: kept
    assert not Path(target.staging).exists()


def test_output_moved_aside_by_a_killed_commit_is_put_back(
    spark: SparkSession, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    old = spark.createDataFrame([("old",)], "label string")
    first = io.prepare_output(spark, str(out), mode="error")
    old.write.parquet(first.staging)
    io.commit_output(spark, first, manifest={})
    out.rename(tmp_path / f".out.pool3-trash-{TOKEN}")  # killed between the swap's renames
    target = io.prepare_output(spark, str(out), mode="overwrite")
    assert target.existing == "complete"
    assertDataFrameEqual(spark.read.parquet(str(out)), old)
    io.abort_output(spark, target)
    assert entries(tmp_path) == ["out"]


def test_create_new_gives_the_name_to_exactly_one_thread(
    spark: SparkSession, tmp_path: Path
) -> None:
    for round_ in range(5):
        path = tmp_path / f"lock-{round_}"
        start = threading.Barrier(8)
        won: list[int] = []

        def take(i: int, path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            if create_new(spark, str(path), f"owner {i}".encode()):
                won.append(i)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and path.read_text() == f"owner {won[0]}"
    assert sorted(entries(tmp_path)) == [f"lock-{i}" for i in range(5)]  # nothing aside left


def test_protocol_and_lock_without_a_jvm(tmp_path: Path) -> None:
    """With no JVM at hand (``spark=None``, as over Spark Connect) the same protocol runs on
    pyarrow.fs: lock, refusal of a second run, commit, overwrite, take-over of a dead run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = (tmp_path / "out").as_uri()

    def stage(target: io.OutputTarget, values: list[int]) -> None:
        folder = tmp_path / Path(target.staging).name
        folder.mkdir()
        pq.write_table(pa.table({"x": values}), folder / "part-00000.parquet")

    first = io.prepare_output(None, out, mode="error", command="featurize")
    assert first.final == f"file:{tmp_path / 'out'}"
    with pytest.raises(OutputBusy, match=f"pid {os.getpid()}"):
        io.prepare_output(None, out, mode="overwrite")
    stage(first, [1, 2])
    io.commit_output(None, first, manifest={"rows": 2}, extra_files={"_note.txt": b"\x00\x01"})
    assert io.read_json(None, out + "/_pool3_manifest.json")["rows"] == 2
    assert (tmp_path / "out" / "_note.txt").read_bytes() == b"\x00\x01"
    assert entries(tmp_path) == ["out"]

    second = io.prepare_output(None, out, mode="overwrite")
    assert second.existing == "complete"
    stage(second, [3])
    io.commit_output(None, second, manifest={})
    assert pq.read_table(tmp_path / "out").column("x").to_pylist() == [3]
    assert entries(tmp_path) == ["out"]

    plant_lock(tmp_path, "out", pid=ended_pid(), pid_start="1")
    (tmp_path / f".out.pool3-staging-{TOKEN}").mkdir()
    third = io.prepare_output(None, out, mode="overwrite")
    io.abort_output(None, third)
    assert entries(tmp_path) == ["out"]
