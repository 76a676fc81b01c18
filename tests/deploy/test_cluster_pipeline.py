"""featurize -> train -> classify through spark-submit.sh on a real standalone cluster.

One module-scoped scenario (4.5-6 minutes on a 2-core machine, hence ``slow``), run from
a temporary directory outside the repository, without ``PYTHONPATH``:

1. a ``local[2]`` reference: :func:`pool3.commands.featurize.run_featurize` in this process on
   40 bundled images (4 per class) into ``features/run_id=RUN``, and on 2 other images into
   ``features/run_id=sibling``; a hidden staging directory is planted next to them, as a
   killed run leaves one;
2. on the cluster: ``featurize`` of the same 40 images with the same ``--run-id`` (a re-run:
   it must replace exactly ``run_id=RUN``), ``train`` on that table, ``classify`` of 20 other
   images, and a ``featurize`` whose ``--input`` is missing (exit 3, one line).

The commands are those of examples/airflow_dag.py; the fast test at the end keeps the two
in step. docs/cluster.md shows them as shell commands, with the measured durations.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from cluster import StandaloneCluster
from conftest import SPARK_TEST_OVERRIDES
from paths import REPO
from pool3.commands.featurize import run_featurize
from pool3.config import load_config
from pool3_tools.datasets import FASHION_MNIST_CLASSES

SAMPLE = REPO / "data" / "fashion-mnist-sample"
DAG = REPO / "examples" / "airflow_dag.py"
RUN = "2026-05-09"  # what Airflow's {{ ds }} or cron's $(date +%F) gives
# The nightly profile: a quality gate that fails on any bad image, a test split with one
# image per class out of 40 (the default 0.2 leaves 8 test images for 10 classes).
PROFILE = "[featurize]\nmax_error_rate = 0.0\n\n[train]\ntest_size = 0.25\nmin_accuracy = 0.3\n"
FEATURE_KEYS = ("path", "label", "sha256", "width", "height", "model", "error")
ERROR_LINE = re.compile(r"^pool3 [a-z-]+: (error|unexpected error): ")


def job_args(root: Path) -> dict[str, list[str]]:
    """The pool3 arguments of each submission (the DAG's FEATURIZE_ARGS, TRAIN_ARGS).

    Outputs and the model directory are ``file://`` URIs, as ``hdfs://`` ones would be on a
    real cluster; the submissions run from another working directory (``cwd``).
    """
    feats, models, preds = (f"file://{root}/{n}" for n in ("features", "models", "predictions"))
    lines = {
        "featurize": f"featurize --input {root}/images --output {feats} --run-id {RUN}",
        "train": f"train --features {feats}/run_id={RUN} --output {models} --run-id {RUN}",
        "classify": f"classify --input {root}/new-images --model {models}/run_id={RUN} "
        f"--output {preds} --run-id {RUN}",
        "failing": f"featurize --input {root}/missing --output {feats} --run-id failed",
    }
    return {step: line.split() for step, line in lines.items()}  # tmp paths have no spaces


def submit_env() -> dict[str, str]:
    """This environment without PYTHONPATH, PYSPARK_PYTHON and pool3 settings (POOL3_X__Y)."""
    drop = ("PYTHONPATH", "PYSPARK_PYTHON", "POOL3_CONF_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env = {k: v for k, v in env.items() if not (k.startswith("POOL3_") and "__" in k)}
    return {**env, "POOL3_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}


def submit(master: str, cwd: Path, profile: Path, args: list[str]) -> dict[str, Any]:
    """``env -u PYTHONPATH spark-submit.sh --master M --conf-profile P -- ARGS``, timed."""
    cmd = [str(REPO / "spark-submit.sh"), "--master", master]
    cmd += ["--conf-profile", str(profile), "--", *args]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=cwd, env=submit_env(), capture_output=True, text=True, timeout=600
    )
    seconds = time.monotonic() - started
    print(f"{' '.join(args[:3])} ...: exit {proc.returncode} in {seconds:.1f} s")
    # Kept for a post-mortem: pytest keeps the last three tmp_path_factory folders.
    (cwd / f"{args[0]}-{args[-1]}.out").write_text(proc.stdout)
    (cwd / f"{args[0]}-{args[-1]}.err").write_text(proc.stderr)
    return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr, "seconds": seconds}


def copy_images(
    dest: Path, picks: slice, classes: tuple[str, ...] = FASHION_MNIST_CLASSES
) -> list[str]:
    dest.mkdir(parents=True)
    for name in classes:
        for f in sorted(SAMPLE.glob(f"{name}_[0-9]*.png"))[picks]:
            shutil.copy(f, dest)
    return sorted(p.name for p in dest.iterdir())


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder``: (mtime_ns, content)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def rows(folder: Path) -> list[dict[str, Any]]:
    return sorted(pq.read_table(folder).to_pylist(), key=lambda r: r["path"])


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "_pool3_manifest.json").read_text())


@pytest.fixture(scope="module")
def scenario(spark, standalone_cluster: StandaloneCluster, tmp_path_factory) -> dict[str, Any]:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("scheduled")
    cwd = root / "cwd"
    cwd.mkdir()
    profile = root / "nightly.toml"
    profile.write_text(PROFILE)
    images = copy_images(root / "images", slice(0, 4))
    copy_images(root / "new-images", slice(4, 6))
    copy_images(root / "sibling-images", slice(6, 7), FASHION_MNIST_CLASSES[:2])
    feats = root / "features"

    local = load_config(str(profile), overrides=SPARK_TEST_OVERRIDES, env={})
    t0 = time.monotonic()
    run_featurize(spark, local, input_path=str(root / "images"), output_path=str(feats), run_id=RUN)
    local_seconds = time.monotonic() - t0
    reference = rows(feats / f"run_id={RUN}")
    local_manifest = manifest(feats / f"run_id={RUN}")
    sibling_input = str(root / "sibling-images")
    run_featurize(spark, local, input_path=sibling_input, output_path=str(feats), run_id="sibling")
    sibling = snapshot(feats / "run_id=sibling")
    leftover = feats / f".run_id={RUN}.pool3-staging-0123456789ab"
    leftover.mkdir()
    (leftover / "part-00000-killed.snappy.parquet").write_bytes(b"PAR1 half-written")

    args, master = job_args(root), standalone_cluster.master_url
    results = {step: submit(master, cwd, profile, a) for step, a in args.items()}
    total = time.monotonic() - started
    print(f"local[2] featurize: {local_seconds:.1f} s; whole scenario: {total:.1f} s")
    return {
        "root": root,
        "images": images,
        "reference": reference,
        "local_manifest": local_manifest,
        "sibling": sibling,
        "results": results,
        "apps": standalone_cluster.master_state()["completedapps"],
        "log_dir": standalone_cluster.log_dir,
    }


def assert_ok(result: dict[str, Any]) -> None:
    assert result["rc"] == 0, result["out"][-3000:] + result["err"][-3000:]


@pytest.mark.cluster
@pytest.mark.slow
def test_three_steps_exit_0_commit_and_ran_on_the_cluster(scenario):
    res, root = scenario["results"], scenario["root"]
    for step in ("featurize", "train", "classify"):
        assert_ok(res[step])
    for out in ("features", "models", "predictions"):
        done = root / out / f"run_id={RUN}"
        assert (done / "_SUCCESS").is_file() and (done / "_pool3_manifest.json").is_file(), out
        assert manifest(done)["output"] == f"file:{done}"
        assert not [p.name for p in (root / out).iterdir() if p.name.startswith(".")], out
    # By URI, nothing lands under the working directory (no ./file:/... folders).
    assert not [p for p in (root / "cwd").iterdir() if p.is_dir()]
    assert (root / "features" / f"run_id={RUN}" / "_pool3_summary.json").is_file()
    assert (root / "models" / f"run_id={RUN}" / "report.html").is_file()
    preds = rows(root / "predictions" / f"run_id={RUN}")
    assert len(preds) == 20 and all(p["error"] is None for p in preds)
    assert {p["predicted"] for p in preds} <= set(FASHION_MNIST_CLASSES)
    # The work ran on the worker: each step is a completed application of the master,
    # with an executor directory (and its logs) under the worker's work dir.
    apps: dict[str, str] = {}
    for app in sorted(scenario["apps"], key=lambda a: a["starttime"]):
        apps.setdefault(app["name"], app["id"])  # the first pool3-featurize, not the failing one
    for step in ("featurize", "train", "classify"):
        assert f"pool3-{step}" in apps, apps
        assert (scenario["log_dir"] / "work" / apps[f"pool3-{step}"] / "0" / "stderr").is_file()


@pytest.mark.cluster
@pytest.mark.slow
def test_cluster_features_equal_local_run_row_for_row(scenario):
    assert_ok(scenario["results"]["featurize"])
    cluster = rows(scenario["root"] / "features" / f"run_id={RUN}")
    local = scenario["reference"]
    assert [Path(r["path"]).name for r in cluster] == scenario["images"]
    assert len(cluster) == len(local) == 40
    for c, lo in zip(cluster, local, strict=True):
        assert {k: c[k] for k in FEATURE_KEYS} == {k: lo[k] for k in FEATURE_KEYS}
        assert c["error"] is None and c["label"] == Path(c["path"]).name.rsplit("_", 1)[0]
        diff = np.abs(np.asarray(c["features"]) - np.asarray(lo["features"])).max()
        assert diff <= 1e-5, (c["path"], diff)


@pytest.mark.cluster
@pytest.mark.slow
def test_rerun_of_a_run_id_replaces_exactly_its_own_output(scenario):
    assert_ok(scenario["results"]["featurize"])
    feats = scenario["root"] / "features"
    # The killed run's staging directory is gone, nothing else was added or removed.
    assert sorted(p.name for p in feats.iterdir()) == [f"run_id={RUN}", "run_id=sibling"]
    logged = scenario["results"]["featurize"]["out"] + scenario["results"]["featurize"]["err"]
    assert "left by a run that is gone" in logged
    assert snapshot(feats / "run_id=sibling") == scenario["sibling"]
    now, before = manifest(feats / f"run_id={RUN}"), scenario["local_manifest"]
    assert before["config"]["spark"]["master"] == "local[2]"
    assert now["config"]["spark"]["master"] == ""  # spark-submit --master gave it
    assert now["created_at"] >= before["committed_at"]


@pytest.mark.cluster
@pytest.mark.slow
def test_manifests_record_the_run(scenario):
    root = scenario["root"]
    feats = manifest(root / "features" / f"run_id={RUN}")
    fingerprint = scenario["reference"][0]["model"]
    assert feats["run_id"] == RUN and feats["command"] == "featurize"
    assert feats["counts"] == {"images": 40, "ignored": 0, "errors": 0, "reused": 0}
    assert set(feats["durations_s"]) == {"startup_seconds", "featurize_seconds"}
    assert all(v > 0 for v in feats["durations_s"].values())
    assert feats["versions"]["pyspark"] and feats["versions"]["pool3"]
    assert feats["config"]["featurize"]["max_error_rate"] == 0.0  # from the profile
    assert feats["model_fingerprint"] == fingerprint
    assert feats["inputs"]["images"] == f"{root}/images"
    train = manifest(root / "models" / f"run_id={RUN}")
    assert train["run_id"] == RUN and train["model_fingerprint"] == fingerprint
    assert train["config"]["train"]["test_size"] == 0.25
    assert train["counts"]["n_train"] == 30 and train["counts"]["n_test"] == 10
    classify = manifest(root / "predictions" / f"run_id={RUN}")
    assert classify["run_id"] == RUN and classify["counts"] == {
        "images": 20,
        "ignored": 0,
        "errors": 0,
    }


@pytest.mark.cluster
@pytest.mark.slow
def test_failing_run_exits_3_with_one_line_and_writes_nothing(scenario):
    res, root = scenario["results"]["failing"], scenario["root"]
    assert res["rc"] == 3, res["out"][-3000:] + res["err"][-3000:]
    lines = (res["out"] + res["err"]).splitlines()
    reasons = [line for line in lines if ERROR_LINE.match(line)]
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith(f"pool3 featurize: error: input '{root}/missing' does not exist")
    # Spark's PythonRunner merges the driver's stderr into spark-submit's stdout: the reason
    # is the driver's last line there, and no result JSON precedes it.
    assert res["out"].rstrip().splitlines()[-1] == reasons[0]
    assert not any(line.startswith("{") for line in res["out"].splitlines())
    assert not any("failed" in p.name for p in (root / "features").iterdir())


def dag_args() -> dict[str, list[str]]:
    """The example DAG's list constants (FEATURIZE_ARGS, ...): literals, other items ``<expr>``."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(DAG.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            name = getattr(node.targets[0], "id", "")
            items = node.value.elts
            found[name] = [e.value if isinstance(e, ast.Constant) else "<expr>" for e in items]
    return found


def test_airflow_dag_mirrors_the_tested_commands(tmp_path):
    # The DAG is parsed, never imported (Airflow is not a dependency). Its argument lists
    # must be the ones submitted above, with --conf PROFILE first, as spark-submit.sh puts it.
    dag = dag_args()
    profile = tmp_path / "nightly.toml"
    profile.write_text(PROFILE)
    for step in ("featurize", "train"):
        ours = job_args(tmp_path)[step]
        cmd = [str(REPO / "spark-submit.sh"), "--dry-run", "--conf-profile", str(profile)]
        dry = subprocess.run([*cmd, "--", *ours], env=submit_env(), capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        words = shlex.split(dry.stdout.strip().splitlines()[-1])
        submitted = words[words.index(str(REPO / "jobs" / "pool3_job.py")) + 1 :]
        theirs = dag[f"{step.upper()}_ARGS"]
        flags = [w for w in submitted if w.startswith("--")]
        assert [w for w in theirs if w.startswith("--")] == flags, (step, theirs, submitted)
        assert theirs[0] == submitted[0] == step
        assert theirs[theirs.index("--run-id") + 1] == "{{ ds }}"
        assert words[words.index("--py-files") + 1] == str(REPO / "build" / "pool3.zip")
    text = DAG.read_text()
    assert '/jobs/pool3_job.py"' in text and '/build/pool3.zip"' in text
