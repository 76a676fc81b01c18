"""Every command over a real Spark Connect server (tests/connect.py), against Spark Classic.

The client is the ``pool3`` command with ``--remote`` and no Java at all (``JAVA_HOME`` points
nowhere and no ``java`` is on its ``PATH``): it must start no JVM. The same input (sample
images plus broken files) is featurized, trained on and classified on both kinds of
session; features, error rows, the held-out split, the accuracy and the predictions must be
the same.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clirun import assert_error, cli_env, finish, run, start
from paths import REPO

pytestmark = pytest.mark.connect

SAMPLE = REPO / "data" / "fashion-mnist-sample"
BROKEN = ("corrupt.jpg", "corrupt.png", "empty.jpg", "truncated.jpg")


def no_java_env(url: str) -> dict[str, str]:
    """The CLI's environment for a Connect client without Java, and SPARK_REMOTE set."""
    env = cli_env()
    java = shutil.which("java")
    if java:
        hidden = {str(Path(java).parent), str(Path(java).resolve().parent)}
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p not in hidden)
    env["JAVA_HOME"] = "/nonexistent-java"
    env["SPARK_REMOTE"] = url
    return env


def table(path: Path) -> dict[str, dict]:
    rows = pq.read_table(path).to_pylist()
    return {r["path"].rsplit("/", 1)[-1]: r for r in rows}


@pytest.fixture(scope="module")
def runs(connect_server, tmp_path_factory):
    """featurize, train, classify on Spark Classic (local[2]) and over Spark Connect."""
    base = tmp_path_factory.mktemp("connect-cli")
    images = base / "images"
    images.mkdir()
    for png in sorted(SAMPLE.glob("*.png"))[:60]:
        shutil.copy(png, images / png.name)
    for name in BROKEN:
        shutil.copy(REPO / "tests" / "data" / "images" / name, images / f"broken_{name}")
    kinds = {
        "classic": (cli_env(), ["--master", "local[2]"]),
        "connect": (no_java_env(connect_server.url), []),
    }
    common = ["--max-error-rate", "0.5", "--precision", "float32"]
    gate = ["--set", "featurize.max_error_rate=0.5", "--precision", "float32"]

    def to(path: str) -> list[str]:
        return ["--output", path]

    def three_steps(kind: str) -> dict:
        env, spark = kinds[kind]
        where = base / kind
        features, model, preds = (str(where / n) for n in ("features", "model", "preds"))
        results = {
            "featurize": run(
                ["featurize", "--input", str(images), "--output", features, *common, *spark],
                REPO,
                env=env,
            ),
            "train": run(
                ["train", "--features", features, "--output", model, *spark], REPO, env=env
            ),
            "classify": run(
                ["classify", "--input", str(images), "--model", model, *to(preds), *gate, *spark],
                REPO,
                env=env,
            ),
        }
        return {"dir": where, **results}

    # the two kinds at once (own processes, outputs and sessions; they share only the cores)
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
        out = dict(zip(kinds, pool.map(three_steps, kinds), strict=True))
    out["images"] = images
    return out


def test_every_command_passes_over_connect_without_java(runs):
    for command in ("featurize", "train", "classify"):
        result = runs["connect"][command]
        assert result.rc == 0, (command, result.stderr[-3000:])
        assert "over Spark Connect" in result.stderr
        assert "java" not in result.stderr.lower().replace("javascript", "")


def test_outputs_equal_spark_classics(runs):
    classic, connect = runs["classic"]["dir"], runs["connect"]["dir"]
    a, b = table(classic / "features"), table(connect / "features")
    assert sorted(a) == sorted(b) and len(a) == 64
    for name, row in a.items():
        other = b[name]
        assert row["error"] == other["error"], name
        assert row["sha256"] == other["sha256"]
        if row["features"] is None:
            assert other["features"] is None and row["error"].split(":")[0]
        else:
            diff = np.abs(np.asarray(row["features"]) - np.asarray(other["features"])).max()
            assert diff <= 1e-6, (name, diff)
    assert sum(r["error"] is not None for r in a.values()) == len(BROKEN)
    meta = [json.loads((d / "model" / "classifier.json").read_text()) for d in (classic, connect)]
    split = [m["meta"]["split"]["test_paths_sha256"] for m in meta]
    assert split[0] == split[1]
    metrics = [json.loads((d / "model" / "metrics.json").read_text()) for d in (classic, connect)]
    assert metrics[0]["accuracy"] == metrics[1]["accuracy"] > 0.5
    pa_, pb_ = table(classic / "preds"), table(connect / "preds")
    assert {k: (v["predicted"], v["error"]) for k, v in pa_.items()} == {
        k: (v["predicted"], v["error"]) for k, v in pb_.items()
    }
    summary = json.loads((connect / "preds" / "_pool3_summary.json").read_text())
    assert summary["images_per_second"] > 0  # was 0.0 in classify's summary


def test_a_live_output_exits_4_and_sigterm_leaves_nothing(runs, connect_server):
    env = no_java_env(connect_server.url)
    out = runs["connect"]["dir"] / "busy"
    args = ["featurize", "--input", str(SAMPLE), "--output", str(out)]
    started = time.monotonic()
    first = start(args, REPO, env)
    try:
        deadline = time.monotonic() + 120
        while not list(out.parent.glob(".busy.pool3-staging-*")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never staged"
            time.sleep(0.2)
        time.sleep(3)  # the featurize job is running on the server now
        second = run(args, REPO, env=env, timeout=120)
        assert_error(second, "featurize", 4, "is being written by pool3 featurize")
        first.send_signal(signal.SIGTERM)
        result = finish(first, started, timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert result.rc == 143, result.stderr[-2000:]
    assert not out.exists()
    assert not list(out.parent.glob(".busy.pool3-*"))
    deadline = time.monotonic() + 30
    while connect_server.running_jobs():
        assert time.monotonic() < deadline, connect_server.running_jobs()
        time.sleep(0.5)
