"""Where the model runs: a local[*] run asks this process, a cluster run asks its executors."""

from __future__ import annotations

import os
import sys

from pool3.connect import workers_are_local
from pool3.extraction.shipping import probe_executors
from pool3.model.runtime import this_host


def test_a_local_session_is_answered_without_a_job(spark):
    assert spark.sparkContext.master.startswith("local[")
    assert spark.sparkContext.pythonExec == sys.executable  # pool3's session sets it
    assert workers_are_local(spark)
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None))
    reports = probe_executors(spark)
    assert reports == [this_host()]
    assert set(tracker.getJobIdsForGroup(None)) == before  # no probe job ran


def test_workers_with_another_python_are_probed(spark, monkeypatch, tmp_path):
    # what Spark runs is the context's pythonExec (PYSPARK_PYTHON when it started, else
    # python3 from PATH), not the environment of now
    context = spark.sparkContext
    monkeypatch.setenv("PYSPARK_PYTHON", str(tmp_path / "missing"))
    assert workers_are_local(spark)
    other = tmp_path / "python3"
    other.symlink_to(sys.executable)  # the same file in another folder: another environment
    monkeypatch.setattr(context, "pythonExec", str(other))
    assert not workers_are_local(spark)
    monkeypatch.setattr(context, "pythonExec", "python3")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert not workers_are_local(spark)  # python3 from PATH
    monkeypatch.setattr(context, "pythonExec", str(tmp_path / "missing"))
    assert not workers_are_local(spark)


def test_tasks_fill_whole_waves_of_the_slots(spark):
    from pool3.extraction.listing import FILES_PER_TASK, Listing, task_count

    def listing(n: int) -> Listing:
        paths = [f"/{i}.jpg" for i in range(n)]
        return Listing(root=None, paths=paths, lengths=[1] * n)  # type: ignore[arg-type]

    slots = 2  # the test session: local[2]
    assert task_count(spark, listing(800)) == 8  # not 7: no idle core in the last wave
    assert task_count(spark, listing(5000)) == 40
    assert task_count(spark, listing(FILES_PER_TASK * 3)) == 4
    assert task_count(spark, listing(1)) == 1  # never more tasks than files
    assert task_count(spark, listing(10)) == slots
    assert task_count(spark, listing(800), partitions=5) == 5  # as configured
