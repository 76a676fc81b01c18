"""The ``pool3`` command as a user runs it: a subprocess, its exit code and its last stderr line.

Every failure must end with exit code of its kind (2 usage/config, 3 input, 4 output, 5 model,
7 training data) and one line ``pool3 <cmd>: error: ...`` that names the culprit. Config
errors fail before Spark starts (fast); the others need Spark's filesystem, so each costs a
JVM start-up (~10-20 s on 2 cores): those runs start together, once per module, and each test
reads its own result.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pool3.classifier import LinearModel, save_model
from pool3.datasets import FASHION_MNIST_ROOT
from pool3.model import load_bundle

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "fashion-mnist-sample"
SPARK_LOG_MARK = "pool3.session"  # logged once the Spark session is up
OTHER_FINGERPRINT = "inception-v3-other:0123456789abcdef"


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


SPARK_EXTRA = {
    # Small, quiet test sessions, set through a user's config channel (env): no UI, loopback
    # only, and a JVM that starts faster (C1 only: these drivers live for seconds).
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
}


def cli_env(**extra_conf: str) -> dict[str, str]:
    """The caller's environment without PYTHONPATH or POOL3_* settings, Spark on 127.0.0.1.

    ``extra_conf`` adds Spark confs (``spark.extra``), passed as ``POOL3_SPARK__EXTRA``, a
    TOML inline table.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("POOL3_")}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    confs = {**SPARK_EXTRA, **extra_conf}
    env["POOL3_SPARK__EXTRA"] = "{" + ", ".join(f'"{k}" = "{v}"' for k, v in confs.items()) + "}"
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pool3.cli", *args]


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``pool3 ARGS`` in its own process group (its JVM and Python workers join it)."""
    return subprocess.Popen(
        command(*args),
        cwd=cwd,
        env=cli_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of ``proc``'s process group (nothing, after a normal exit)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def finish(proc: subprocess.Popen, started: float, timeout: float = 300) -> Result:
    """Wait for ``proc``; on timeout kill its whole group, so no JVM outlives the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return Result(proc.returncode, out, err, time.monotonic() - started)


def run(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 300
) -> Result:
    started = time.monotonic()
    return finish(start(args, cwd, env), started, timeout)


def assert_error(result: Result, cmd: str, code: int, *mentions: str) -> None:
    assert result.rc == code, (result.rc, result.stderr[-2000:])
    assert result.last_line.startswith(f"pool3 {cmd}: error: "), result.stderr[-2000:]
    for word in mentions:
        assert word in result.last_line, (word, result.last_line)
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- no Spark: usage and config


def test_help_exits_zero(tmp_path):
    top = run(["--help"], tmp_path)
    assert top.rc == 0 and "featurize" in top.stdout and "Exit codes" in top.stdout
    for cmd in ("featurize", "train", "classify", "datasets", "export-graph"):
        sub = run([cmd, "--help"], tmp_path)
        assert sub.rc == 0, (cmd, sub.stderr)
        assert sub.stdout.startswith(f"usage: pool3 {cmd}"), sub.stdout[:200]


def test_missing_subcommand_is_usage_error(tmp_path):
    result = run([], tmp_path)
    assert result.rc == 2 and "pool3" in result.last_line


@pytest.mark.parametrize(
    ("args", "conf", "mentions"),
    [
        (["--labels", "bogus"], None, ["'bogus'", "manifest:"]),
        ([], "[featurize]\nbogus_key = 1\n", ["featurize.bogus_key", "bad.toml"]),
        (["--max-error-rate", "2"], None, ["featurize.max_error_rate", "2.0", "<= 1.0"]),
        ([], "[train]\nC = -1.0\n", ["train.C", "-1.0", "bad.toml"]),
    ],
    ids=["unknown-label-mode", "unknown-conf-key", "invalid-cli-value", "invalid-conf-value"],
)
def test_config_errors_fail_fast_before_spark(tmp_path, args, conf, mentions):
    extra = []
    if conf is not None:
        (tmp_path / "bad.toml").write_text(conf)
        extra = ["--conf", "bad.toml"]
    (tmp_path / "imgs").mkdir()
    result = run(["featurize", "--input", "imgs", "--output", "out", *args, *extra], tmp_path)
    assert_error(result, "featurize", 2, *mentions)
    assert SPARK_LOG_MARK not in result.stderr  # failed before a JVM was started
    assert result.seconds < 8, result.seconds
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    not Path(FASHION_MNIST_ROOT, "train-images-idx3-ubyte.gz").exists(),
    reason=f"Fashion-MNIST idx files not installed in {FASHION_MNIST_ROOT}",
)
def test_datasets_writes_per_class_sample(tmp_path):
    result = run(["datasets", "fashion-mnist", "--per-class", "3", "--out", "fm"], tmp_path)
    assert result.rc == 0, result.stderr[-2000:]
    files = sorted((tmp_path / "fm").iterdir())
    assert len(files) == 30 and all(f.suffix == ".png" for f in files)
    labels = [f.stem.rsplit("_", 1)[0] for f in files]
    assert {labels.count(lab) for lab in set(labels)} == {3} and len(set(labels)) == 10


# ---------------------------------------------------------------- Spark-backed failures


def _single_class_table(path: Path, fingerprint: str) -> None:
    rng = np.random.default_rng(0)
    n = 12
    table = pa.table(
        {
            "path": [f"/imgs/shirt_{i}.png" for i in range(n)],
            "label": ["shirt"] * n,
            "sha256": [f"{i:064x}" for i in range(n)],
            "width": pa.array([28] * n, pa.int32()),
            "height": pa.array([28] * n, pa.int32()),
            "features": pa.array(
                list(rng.random((n, 2048), dtype=np.float32)), pa.list_(pa.float32())
            ),
            "model": [fingerprint] * n,
            "error": pa.array([None] * n, pa.string()),
        }
    )
    path.mkdir()
    pq.write_table(table, path / "part-00000.parquet")
    (path / "_SUCCESS").write_text("")


def _spark_cases(root: Path) -> dict[str, list[str]]:
    """Inputs on disk for each Spark-backed failure, and its command line (cwd = root)."""
    imgs = root / "imgs"
    imgs.mkdir()
    for src in sorted(SAMPLE.glob("*.png"))[:2]:
        shutil.copy(src, imgs / src.name)
    empty = root / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    (empty / "data.csv").write_text("a,b\n")
    done = root / "done"  # a committed output: data plus _SUCCESS
    done.mkdir()
    pq.write_table(pa.table({"x": [1]}), done / "part-00000.parquet")
    (done / "_SUCCESS").write_text("")
    _single_class_table(root / "one_class", load_bundle("default").fingerprint)
    model = LinearModel(np.ones((3, 2048)), np.zeros(3), ("a", "b", "c"), OTHER_FINGERPRINT)
    save_model(model, root / "other_model")
    master = " --master local[1]"
    return {
        name: line.split()
        for name, line in {
            "missing-input": "featurize --input no_such_dir --output o1" + master,
            "empty-input": "featurize --input empty --output o2" + master,
            "existing-output": "featurize --input imgs --output done" + master,
            "single-class": "train --features one_class --output m1" + master,
            "other-fingerprint": "classify --input imgs --model other_model --output o3" + master,
        }.items()
    }


@pytest.fixture(scope="module")
def spark_failures(tmp_path_factory) -> tuple[Path, dict[str, Result]]:
    """Run every Spark-backed failing command at once; results by case name."""
    root = tmp_path_factory.mktemp("cli_spark")
    cases = _spark_cases(root)
    started = time.monotonic()
    procs = {name: start(args, root) for name, args in cases.items()}
    try:
        results = {name: finish(proc, started) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            kill_group(proc)
    return root, results


def test_missing_input_exits_3(spark_failures):
    root, results = spark_failures
    assert_error(results["missing-input"], "featurize", 3, "no_such_dir", "does not exist")
    assert not (root / "o1").exists()


def test_input_without_images_exits_3(spark_failures):
    root, results = spark_failures
    assert_error(results["empty-input"], "featurize", 3, "no images found", "empty")
    assert not (root / "o2").exists()
    assert not [p for p in root.iterdir() if ".o2.pool3-staging" in p.name]


def test_existing_output_needs_overwrite_exits_4(spark_failures):
    root, results = spark_failures
    assert_error(results["existing-output"], "featurize", 4, "done", "--mode overwrite")
    assert sorted(p.name for p in (root / "done").iterdir()) == ["_SUCCESS", "part-00000.parquet"]


def test_train_on_single_class_exits_7(spark_failures):
    root, results = spark_failures
    assert_error(results["single-class"], "train", 7, "at least 2 classes", "'shirt'")
    assert not (root / "m1").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".m1.")]


def test_classify_with_model_of_other_fingerprint_exits_5(spark_failures):
    root, results = spark_failures
    result = results["other-fingerprint"]
    ours = load_bundle("default").fingerprint
    assert_error(result, "classify", 5, OTHER_FINGERPRINT, ours, "other_model")
    assert not (root / "o3").exists()
