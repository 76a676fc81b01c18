"""Issue 38, real faults on outputs and lost runtimes: a full disk and a read-only file system
under ``pool3 featurize --output`` (tmpfs mounts, this machine runs as root), and the
classification of a SparkContext stopped by an out-of-memory, in both orders, from real
Py4JJavaErrors raised by the test session's JVM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError

from clirun import assert_error, run
from conftest import SPARK_TEST_OVERRIDES
from paths import SAMPLE
from pool3.commands.featurize import run_featurize
from pool3.config import load_config
from pool3.errors import MEMORY_SETTINGS, OutputError, as_output_error, as_resource_error

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (needs root)")


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``where`` for the block, then unmounted (lazily if still busy)."""
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def copy_images(dest: Path, n: int) -> None:
    dest.mkdir(parents=True)
    for f in sorted(SAMPLE.glob("*.png"))[:n]:
        shutil.copy(f, dest / f.name)


def assert_nothing_left(parent: Path) -> None:
    """No output, no staging, no lock: nothing but what the test put there."""
    assert sorted(p.name for p in parent.iterdir()) == []


@pytest.mark.slow  # two featurize runs in subprocesses: ~35 s
@pytest.mark.spark
def test_full_disk_exits_4_naming_the_output_then_a_healthy_rerun_commits(tmp_path):
    copy_images(tmp_path / "imgs", 10)  # ~85 KB of features: more than the disk holds
    args = ["featurize", "--input", "imgs", "--master", "local[2]"]
    with tmpfs(tmp_path / "tiny", "size=48k") as tiny:
        full = run([*args, "--output", "tiny/out"], tmp_path)
        assert_error(full, "featurize", 4, "cannot write tiny/out", "no space left on device")
        assert "MiB free on" in full.last_line
        assert "\tat " not in full.stderr and "Py4JJavaError" not in full.stderr
        assert_nothing_left(tiny)
    healthy = run([*args, "--output", "out"], tmp_path)
    assert healthy.rc == 0, healthy.stderr[-2000:]
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_full_disk_in_process_raises_output_error_and_leaves_nothing(spark, tmp_path):
    """The same fault through the command function (the API's way): OutputError, exit 4."""
    copy_images(tmp_path / "imgs", 10)
    inp = str(tmp_path / "imgs")
    with tmpfs(tmp_path / "tiny", "size=48k") as tiny:
        with pytest.raises(OutputError) as caught:
            run_featurize(spark, _config(), input_path=inp, output_path=str(tiny / "out"))
        assert caught.value.exit_code == 4 and "no space left on device" in str(caught.value)
        assert str(tiny / "out") in str(caught.value)
        assert_nothing_left(tiny)
    run_featurize(spark, _config(), input_path=inp, output_path=str(tmp_path / "out"))
    assert (tmp_path / "out" / "_SUCCESS").exists()


def _config():
    return load_config(overrides=SPARK_TEST_OVERRIDES, env={})


@pytest.mark.spark
def test_read_only_output_exits_4(tmp_path):
    copy_images(tmp_path / "imgs", 2)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        result = run(["featurize", "--input", "imgs", "--output", "ro/out"], tmp_path)
        assert_error(result, "featurize", 4, f"cannot write to {ro}", "Read-only file system")
        assert_nothing_left(ro)


def test_os_errors_name_the_output_and_the_free_space(tmp_path):
    full = OSError(28, "No space left on device")
    assert as_output_error(RuntimeError("write failed"), None) is None
    try:
        raise RuntimeError("pyarrow write failed") from full
    except RuntimeError as err:
        found = as_output_error(err, str(tmp_path / "x" / "out"))
    assert isinstance(found, OutputError) and found.exit_code == 4
    assert f"MiB free on {tmp_path}" in str(found) and "no space left on device" in str(found)
    # reading an input can be denied too: only a denial that names the output counts
    denied = RuntimeError("java.nio.file.AccessDeniedException: /data/in: Permission denied")
    assert as_output_error(denied, "/data/out") is None
    assert as_output_error(denied, "/data/in") is not None


def _java_error(spark, message: str) -> Py4JJavaError:
    """A real Py4JJavaError: the JVM's NullPointerException with ``message``."""
    with pytest.raises(Py4JJavaError) as caught:
        spark._jvm.java.util.Objects.requireNonNull(None, message)
    return caught.value


# What `pool3 train` on 1M rows gave (issue 38), in the two orders the race can take.
STOPPED = (
    'Cannot invoke "org.apache.spark.scheduler.DAGScheduler.runJob(org.apache.spark.rdd.RDD, '
    'scala.Function2, scala.collection.Seq, org.apache.spark.util.CallSite)" because the '
    'return value of "org.apache.spark.SparkContext.dagScheduler()" is null'
)
OOM = (
    "Job aborted due to stage failure: Task 3 in stage 12.0 failed 1 times, most recent "
    "failure: Lost task 3.0 in stage 12.0 (TID 40) (localhost executor driver): "
    "java.lang.OutOfMemoryError: Java heap space"
)


@pytest.mark.parametrize("message", [OOM, STOPPED], ids=["oom-first", "stopped-first"])
def test_a_context_stopped_by_an_out_of_memory_is_the_out_of_memory(spark, message):
    err = _java_error(spark, message)
    found = as_resource_error(err, "fitting")
    assert found is not None and found.exit_code == 8
    assert "fitting" in str(found) and MEMORY_SETTINGS in str(found)
    assert "OutOfMemoryError" in str(found)
    assert as_output_error(err, "out") is None
    assert as_resource_error(_java_error(spark, "an unrelated failure"), "fitting") is None


def test_executors_lost_past_their_retries_are_a_lost_runtime(spark):
    """Spark's own abort text for a job whose executors died more often than
    spark.task.maxFailures allows (here exit 137: killed, most often for memory)."""
    from pool3.errors import as_resource_error

    err = _java_error(
        spark,
        "Job aborted due to stage failure: Task 3 in stage 7.0 failed 4 times, most recent "
        "failure: Lost task 3.3 in stage 7.0 (TID 31) (10.0.0.7 executor 5): ExecutorLostFailure "
        "(executor 5 exited caused by one of the running tasks) Reason: Command exited with "
        "code 137",
    )
    found = as_resource_error(err, "running pool3 featurize")
    assert found is not None and found.exit_code == 8
    assert "lost executors past its task retries" in str(found)
    assert "ExecutorLostFailure (executor 5 exited caused by one of the running tasks)" in str(
        found
    )
    assert "spark.task.maxFailures" in str(found) and "\n" not in str(found)


def test_a_failed_run_names_its_staging_only_while_it_is_there(spark, tmp_path):
    """The abort removes the staging folder and the message does not name it; where the
    removal fails (here a mount inside it: EBUSY), the message says where the output is."""
    from pool3.commands.lifecycle import output_run

    cfg = load_config(overrides=SPARK_TEST_OVERRIDES, env={})
    out = tmp_path / "out"
    with pytest.raises(OutputError) as gone, output_run(spark, str(out), cfg, run_id=None,
                                                        command="train"):  # fmt: skip
        raise OutputError("cannot write (test)")
    assert "left in" not in str(gone.value) and sorted(os.listdir(tmp_path)) == []
    busy = None
    try:
        with pytest.raises(OutputError) as left, output_run(spark, str(out), cfg, run_id=None,
                                                            command="train") as target:  # fmt: skip
            busy = Path(target.staging.removeprefix("file:")) / "busy"
            busy.mkdir(parents=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(busy)],
                           check=True)  # fmt: skip
            raise OutputError("cannot write (test)")
        assert str(left.value).endswith(f"; the new output is left in {target.staging}")
        assert not list(tmp_path.glob("*lock*"))  # the lock is released all the same
    finally:
        if busy is not None:
            subprocess.run(["umount", "-l", str(busy)], check=False)
            shutil.rmtree(busy.parent, ignore_errors=True)
