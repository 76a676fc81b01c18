"""Real faults, no mocks: a Python worker killed mid-job, the whole job SIGKILLed mid-write,
and two runs started at once on one output.

Both run the ``pool3`` command in a subprocess: the worker crash needs a Spark session that
retries tasks (``local[2,3]``: 2 cores, 3 attempts per task; the test session's ``local[2]``
fails a job on the first task failure), and the SIGKILL needs a process group to kill.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from clirun import assert_error, cli_env, command, finish, run, start
from paths import APPS, SAMPLE

FAULTY_CLI = APPS / "faulty_cli.py"  # pool3.cli.main with a worker hook that kills a worker
FAULT_LINE = "pool3 test fault: killing worker"

pytestmark = pytest.mark.spark  # every test runs pool3 with Spark in a subprocess


def copy_images(dest: Path, n: int) -> set[str]:
    """The first ``n`` bundled images (sorted by name) copied to ``dest``; their names."""
    dest.mkdir(parents=True)
    files = sorted(SAMPLE.glob("*.png"))[:n]
    assert len(files) == n
    for f in files:
        shutil.copy(f, dest / f.name)
    return {f.name for f in files}


def check_output(out: Path, names: set[str]) -> None:
    """Committed, one row per input file: none missing, none duplicated, none failed."""
    assert (out / "_SUCCESS").exists()
    table = pq.read_table(out, columns=["path", "error", "features"]).to_pylist()
    paths = [r["path"] for r in table]
    assert len(paths) == len(set(paths)) == len(names)
    assert {Path(p).name for p in paths} == names
    assert all(r["error"] is None and len(r["features"]) == 2048 for r in table)


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.pool3-"))


@pytest.mark.slow
def test_worker_death_is_retried_without_lost_or_duplicate_rows(tmp_path):
    names = copy_images(tmp_path / "imgs", 40)
    # 4 partitions: the crashed one is one task among several that succeed and commit.
    env = cli_env()
    env["POOL3_FEATURIZE__PARTITIONS"] = "4"
    args = ["featurize", "--input", "imgs", "--output", "out", "--master", "local[2,3]"]
    proc = run(args, tmp_path, env=env, timeout=540, program=FAULTY_CLI)
    assert proc.rc == 0, proc.stderr[-3000:]
    # The fault really happened: the worker said so and Spark lost (then retried) the task.
    assert FAULT_LINE in proc.stderr
    assert "Python worker exited unexpectedly" in proc.stderr
    assert "Lost task 0.0 in stage" in proc.stderr
    check_output(tmp_path / "out", names)
    assert leftovers(tmp_path, "out") == []


def _wait_for_committed_task(parent: Path, name: str, proc: subprocess.Popen) -> Path:
    """Poll until a task has committed a part file (into staging, or wherever it writes).

    A part file outside any ``attempt_*`` directory is a finished task's output (Spark's
    committer moved it there); the job itself is then still running its other tasks. The
    final path is watched too, so that a job writing there directly is caught mid-write.
    """
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the job ended before the kill"
        for where in [*parent.glob(f".{name}.pool3-staging-*"), parent / name]:
            for part in where.rglob("part-*"):
                if not any(d.startswith("attempt_") for d in part.relative_to(where).parts):
                    return part
        time.sleep(0.1)
    raise AssertionError(f"no committed part file under .{name}.pool3-staging-* in 300 s")


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (from /proc), e.g. the JVM and its Python workers."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _killpg_and_wait(proc: subprocess.Popen) -> set[int]:
    """SIGKILL the job's process group; returns the pids that were in it, all gone."""
    pids = _descendants(proc.pid) | {proc.pid}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)], "processes survived the SIGKILL"
    return pids


@pytest.mark.slow
def test_sigkill_mid_write_then_rerun_gives_complete_output(tmp_path):
    names = copy_images(tmp_path / "imgs", 100)
    env = cli_env()
    env["POOL3_FEATURIZE__PARTITIONS"] = "4"
    args = ["featurize", "--input", "imgs", "--output", "out", "--master", "local[2]"]
    with (tmp_path / "killed.log").open("w") as log:
        proc = subprocess.Popen(
            command(*args), cwd=tmp_path, env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            part = _wait_for_committed_task(tmp_path, "out", proc)
        finally:
            killed = _killpg_and_wait(proc)
    assert len(killed) >= 3, killed  # the driver, its JVM, and Python worker(s) were running
    out = tmp_path / "out"
    # What a reader sees after the kill: nothing at the final path, or nothing complete.
    assert not (out / "_SUCCESS").exists(), part
    assert not out.exists() or not any(out.rglob("part-*"))
    left = leftovers(tmp_path, "out")
    assert ".out.pool3-lock" in left and any("pool3-staging-" in e for e in left), left

    rerun = run(args, tmp_path, env=env, timeout=540)
    assert rerun.rc == 0, rerun.stderr[-3000:]
    # The killed driver's lock and staging: its process has ended, so they are removed.
    assert "on this host has ended" in rerun.stderr, rerun.stderr[-3000:]
    assert "left by a run that is gone" in rerun.stderr
    check_output(out, names)
    assert leftovers(tmp_path, "out") == []


def test_two_runs_on_one_output_one_commits_the_other_exits_4(tmp_path):
    """A scheduler retry while the first run still works: both start at once, with
    ``--mode overwrite``; exactly one takes the output, the other is refused before it
    loads the model, and the output is the winner's, complete, each image once."""
    names = copy_images(tmp_path / "imgs", 30)
    args = ["featurize", "--input", "imgs", "--output", "out", "--mode", "overwrite"]
    args += ["--master", "local[1]"]
    started = time.monotonic()
    procs = [start(args, tmp_path) for _ in range(2)]
    results = [finish(p, started, timeout=400) for p in procs]
    assert sorted(r.rc for r in results) == [0, 4], [r.stderr[-2000:] for r in results]
    winner = procs[[r.rc for r in results].index(0)].pid
    refused = results[[r.rc for r in results].index(4)]
    assert_error(refused, "featurize", 4, f"is being written by pool3 featurize, pid {winner}")
    check_output(tmp_path / "out", names)
    assert leftovers(tmp_path, "out") == []


@pytest.mark.parametrize("when", ["locked", "writing"])
def test_sigterm_removes_the_runs_lock_and_staging(tmp_path, when):
    """A scheduler cancelling the run (SIGTERM to the driver) just after it took its output,
    or while Spark writes staging: exit 143, and no lock, heartbeat or staging is left for
    the next run to wait on or clean."""
    copy_images(tmp_path / "imgs", 30)
    args = ["featurize", "--input", "imgs", "--output", "out", "--master", "local[1]"]
    started = time.monotonic()
    proc = start(args, tmp_path)
    deadline = time.monotonic() + 300
    pattern = ".out.pool3-lock" if when == "locked" else ".out.pool3-staging-*"
    while not list(tmp_path.glob(pattern)):
        assert proc.poll() is None and time.monotonic() < deadline, f"never {when}"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # the driver process only, as YARN or Airflow would
    result = finish(proc, started, timeout=120)
    assert result.rc == 143, result.stderr[-3000:]
    # (the JVM may log its own shutdown after that line)
    assert "pool3 featurize: terminated (SIGTERM); nothing committed" in result.stderr
    assert leftovers(tmp_path, "out") == [] and not (tmp_path / "out").exists()
