"""The ``pool3`` command as a user runs it: a subprocess, its exit code and its last stderr line.

Every failure must end with exit code of its kind (2 usage/config, 3 input, 4 output, 5 model,
7 training data) and one line ``pool3 <cmd>: error: ...`` that names the culprit. Config
errors fail before Spark starts (fast); the others need Spark's filesystem, so each costs a
JVM start-up (~10-20 s on 2 cores): those runs start together, once per module, and each test
reads its own result.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hostile
from clirun import SPARK_LOG_MARK, Result, assert_error, cli_env, finish, kill_group, run, start
from paths import SAMPLE
from pool3.commands.lifecycle import SUMMARY_NAME
from pool3.model import load_bundle
from pool3.storage.commit import MANIFEST_NAME
from pool3.training.classifier import LinearModel, save_model

OTHER_FINGERPRINT = "inception-v3-other:0123456789abcdef"
# the fixtures here that run pool3 with Spark in subprocesses (tests/conftest.py)
FIXTURE_MARKERS = {"spark_failures": ("spark",)}


# ---------------------------------------------------------------- no Spark: usage and config


def test_help_exits_zero(tmp_path):
    top = run(["--help"], tmp_path)
    assert top.rc == 0 and "featurize" in top.stdout and "Exit codes" in top.stdout
    for cmd in ("featurize", "train", "classify", "datasets", "export-graph", "setup"):
        sub = run([cmd, "--help"], tmp_path)
        assert sub.rc == 0, (cmd, sub.stderr)
        assert sub.stdout.startswith(f"usage: pool3 {cmd}"), sub.stdout[:200]


@pytest.mark.heavy  # builds the model caches from scratch
def test_setup_fills_the_model_caches_of_a_new_home(tmp_path):
    home = tmp_path / "home"
    env = {**cli_env(), "POOL3_HOME": str(home)}
    res = run(["setup", "--no-jvm", "--log-format", "json"], tmp_path, env=env)
    assert res.rc == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["openvino_ir"] == "ready" and summary["model"].startswith("inception-v3")
    assert list(home.glob("openvino/*/*.xml")) or list(home.glob("openvino/**/*.xml"))
    assert not (home / "jvm").exists()  # --no-jvm: the slow tests build one (tests/test_jvm.py)


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
    assert not (tmp_path / "out").exists()


def test_datasets_writes_per_class_sample(tmp_path, small_fashion_mnist):
    args = ["datasets", "fashion-mnist", "--per-class", "3", "--out", "fm"]
    result = run([*args, "--root", str(small_fashion_mnist)], tmp_path)
    assert result.rc == 0, result.stderr[-2000:]
    files = sorted((tmp_path / "fm").iterdir())
    assert len(files) == 30 and all(f.suffix == ".png" for f in files)
    labels = [f.stem.rsplit("_", 1)[0] for f in files]
    assert {labels.count(lab) for lab in set(labels)} == {3} and len(set(labels)) == 10


# ---------------------------------------------------------------- Spark-backed failures


def _feature_table(path: Path, fingerprint: str, labels: tuple[str, ...] = ("shirt",)) -> None:
    """A committed feature table of 12 random rows per label."""
    rng = np.random.default_rng(0)
    names = [label for label in labels for _ in range(12)]
    n = len(names)
    table = pa.table(
        {
            "path": [f"/imgs/{label}_{i}.png" for i, label in enumerate(names)],
            "label": names,
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
    fingerprint = load_bundle("default").fingerprint
    _feature_table(root / "one_class", fingerprint)
    _feature_table(root / "two_classes", fingerprint, ("shirt", "bag"))
    for name, print_ in (("other_model", OTHER_FINGERPRINT), ("our_model", fingerprint)):
        model = LinearModel(np.ones((3, 2048)), np.zeros(3), ("a", "b", "c"), print_)
        save_model(model, root / name)
        (root / name / "_SUCCESS").write_text("")  # committed
    bad = root / "bad_imgs"  # 1 of 3 images unreadable
    shutil.copytree(imgs, bad)
    (bad / "empty_0.png").write_bytes(b"")
    gated = "classify --input bad_imgs --model our_model --max-error-rate"
    master = " --master local[1]"
    hostile.build(root / "new [photos] {raw}*")  # names with spaces: not split below
    hostile_case = ["featurize", "--input", "new [photos] {raw}*", "--output", "hostile out"]
    return {
        "hostile": [*hostile_case, "--max-error-rate", "1", *master.split()],
        **{
            name: line.split()
            for name, line in {
                "missing-input": "featurize --input no_such_dir --output o1" + master,
                "empty-input": "featurize --input empty --output o2" + master,
                "existing-output": "featurize --input imgs --output done" + master,
                "single-class": "train --features one_class --output m1" + master,
                "train-by-uri": f"train --features file://{root}/two_classes "
                f"--output file://{root}/by-uri/model" + master,
                "train-json": "train --features two_classes --output m-json --log-format json"
                + master,
                "other-fingerprint": "classify --input imgs --model other_model --output o3"
                + master,
                "classify-gate": f"{gated} 0.2 --output o4" + master,
                "classify-lenient": f"{gated} 0.5 --output o5" + master,
            }.items()
        },
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


def test_hostile_collection_exits_0_with_every_file_counted(spark_failures):
    root, results = spark_failures
    result = results["hostile"]
    assert result.rc == 0, result.stderr[-3000:]
    summary = json.loads((root / "hostile out" / SUMMARY_NAME).read_text())
    col_root = root / "new [photos] {raw}*"
    assert summary["images"] + summary["ignored"] == hostile.find_count(col_root)
    rows = pq.read_table(root / "hostile out", columns=["path", "error"]).to_pylist()
    assert len(rows) == summary["images"] == len({r["path"] for r in rows})


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


def test_train_by_file_uri_writes_where_the_uri_says(spark_failures):
    """``--output file:///...`` is a URI, not a folder named ``file:`` under the working
    directory (as it was when train wrote its model with pathlib)."""
    root, results = spark_failures
    result = results["train-by-uri"]
    assert result.rc == 0, result.stderr[-3000:]
    model = root / "by-uri" / "model"
    assert (model / "_SUCCESS").is_file() and (model / "classifier.npz").is_file()
    assert f"Report: file:{model}/report.html" in result.stdout
    assert not [p for p in root.iterdir() if p.name.startswith("file:")]
    assert sorted(p.name for p in (root / "by-uri").iterdir()) == ["model"]


def test_default_console_reads_like_a_tool(spark_failures):
    """Log lines and a short summary printed once; no config dump (that is in the manifest
    and under --verbose), none of the JVM's start-up notes, no Spark progress bar in a log."""
    root, results = spark_failures
    result = results["train-by-uri"]
    both = result.stdout + result.stderr
    assert both.count("Accuracy: ") == 1 and result.stdout.startswith("Accuracy: ")
    assert "95% interval (Wilson)" in result.stdout and "duplicates: " in result.stdout
    assert "config (files" not in both and '"featurize": {' not in both
    for noise in ("NativeCodeLoader", "resolves to a loopback address", "log4j2-defaults"):
        assert noise not in both, noise
    assert "[Stage " not in both
    manifest = json.loads((root / "by-uri" / "model" / MANIFEST_NAME).read_text())
    assert manifest["config"]["report"]["duplicate_cosine"] == 0.98


def test_log_format_json_for_schedulers(spark_failures):
    root, results = spark_failures
    result = results["train-json"]
    assert result.rc == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["command"] == "train" and 0.0 <= summary["accuracy"] <= 1.0
    assert summary["model_dir"].endswith("m-json") and "duplicate_counts" in summary
    records = [json.loads(ln) for ln in result.stderr.splitlines() if ln.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == SPARK_LOG_MARK for r in records)
    pool3_lines = [ln for ln in result.stderr.splitlines() if " pool3." in ln]
    assert not pool3_lines, pool3_lines[:3]  # every pool3 log line is JSON
    assert (root / "m-json" / "report.html").is_file()


def test_classify_with_model_of_other_fingerprint_exits_5(spark_failures):
    root, results = spark_failures
    result = results["other-fingerprint"]
    ours = load_bundle("default").fingerprint
    assert_error(result, "classify", 5, OTHER_FINGERPRINT, ours, "other_model")
    assert not (root / "o3").exists()


def test_classify_has_the_error_budget_of_featurize(spark_failures):
    """``classify --max-error-rate`` is featurize's: past it nothing is committed (exit 6),
    below it the unreadable image is an error row of a committed output."""
    root, results = spark_failures
    gate = "featurize.max_error_rate=20.0%"
    assert_error(results["classify-gate"], "classify", 6, "1 of 3 images", gate, "empty")
    assert not (root / "o4").exists()
    assert not [p for p in root.iterdir() if ".o4." in p.name]
    result = results["classify-lenient"]
    assert result.rc == 0, result.stderr[-3000:]
    summary = json.loads((root / "o5" / SUMMARY_NAME).read_text())
    assert (summary["images"], summary["errors"], summary["error_rate"]) == (3, 1, 0.333333)
    rows = pq.read_table(root / "o5", columns=["path", "error"]).to_pylist()
    assert [r["path"].endswith("empty_0.png") for r in rows if r["error"]] == [True]
    assert len(rows) == 3
