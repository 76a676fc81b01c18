"""Committed tables checked against their manifest (real files damaged on disk), and the
message of a commit that fails on a full disk (a real 64 KB tmpfs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import SPARK_TEST_OVERRIDES
from paths import SAMPLE
from pool3.commands.featurize import run_featurize
from pool3.commands.train import run_train
from pool3.config import load_config
from pool3.errors import InputError, OutputError

pytestmark = pytest.mark.spark
CLASSES = ("sneaker", "bag", "trouser")


def config(**overrides):
    return load_config(overrides={**SPARK_TEST_OVERRIDES, **overrides}, env={})


@pytest.fixture(scope="module")
def features(spark, tmp_path_factory) -> Path:
    """A committed feature table of 24 bundled images (3 classes), in two or more parts."""
    root = tmp_path_factory.mktemp("integrity")
    images = root / "images"
    images.mkdir()
    for label in CLASSES:
        for src in sorted(SAMPLE.glob(f"{label}_[0-9]*.png"))[:8]:
            shutil.copy(src, images / src.name)
    out = root / "features"
    run_featurize(spark, config(), input_path=str(images), output_path=str(out))
    assert len(list(out.glob("part-*"))) >= 2
    return out


def parts(table: Path) -> list[Path]:
    return sorted(table.glob("part-*"))


def nothing_left(parent: Path) -> None:
    """No model, no staging, no lock, no trash under ``parent``."""
    assert not [p.name for p in parent.iterdir() if p.name.startswith((".model", "model"))]


def test_manifest_records_each_part_and_its_size(features):
    recorded = json.loads((features / "_pool3_manifest.json").read_text())["parts"]
    assert recorded == {p.name: p.stat().st_size for p in parts(features)}


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_train_refuses_a_table_changed_after_its_commit(spark, features, tmp_path, damage):
    table = tmp_path / "features"
    shutil.copytree(features, table)
    part = parts(table)[0]
    if damage == "truncated":
        os.truncate(part, part.stat().st_size // 2)
    else:
        part.unlink()
    with pytest.raises(InputError) as caught:
        run_train(spark, config(), features_path=str(table), model_dir=str(tmp_path / "model"))
    message = str(caught.value)
    assert caught.value.exit_code == 3 and "\n" not in message
    kind = "changed size" if damage == "truncated" else "missing"
    assert f"{kind}: {part.name}" in message, message
    assert "changed after it was committed" in message and "--mode overwrite" in message
    nothing_left(tmp_path)
    run_train(spark, config(), features_path=str(features), model_dir=str(tmp_path / "model"))
    assert (tmp_path / "model" / "_SUCCESS").exists()


def test_a_part_damaged_in_place_is_a_damaged_input(spark, features, tmp_path):
    """Same size, other bytes (the manifest's sizes cannot see it): Spark's failure to read
    the footer comes out as InputError naming the part."""
    table = tmp_path / "features"
    shutil.copytree(features, table)
    part = parts(table)[0]
    data = bytearray(part.read_bytes())
    data[-8:] = b"\0" * 8  # footer length and magic bytes
    part.write_bytes(bytes(data))
    for crc in table.glob(".*.crc"):
        crc.unlink()  # a copy made by other tools has none; Hadoop would report a checksum
    with pytest.raises(InputError, match=r"damaged input") as caught:
        run_train(spark, config(), features_path=str(table), model_dir=str(tmp_path / "model"))
    assert part.name in str(caught.value) and "\n" not in str(caught.value)
    nothing_left(tmp_path)


def test_incremental_featurize_refuses_a_damaged_previous_output(spark, features, tmp_path):
    out = tmp_path / "features"
    shutil.copytree(features, out)
    part = parts(out)[-1]
    os.truncate(part, 10)
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(sorted(SAMPLE.glob("bag_[0-9]*.png"))[0], images)
    inc = config(**{"output.mode": "incremental"})
    with pytest.raises(InputError, match=rf"changed size: {part.name}"):
        run_featurize(spark, inc, input_path=str(images), output_path=str(out))
    assert (out / "_SUCCESS").exists() and part.stat().st_size == 10  # left as it was
    assert not [p.name for p in tmp_path.iterdir() if ".pool3-" in p.name]
    over = config(**{"output.mode": "overwrite"})
    assert run_featurize(spark, over, input_path=str(images), output_path=str(out))["images"] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_failed_commit_names_staging_only_if_it_is_still_there(spark, features, tmp_path):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)], check=True)
    try:
        with pytest.raises(OutputError) as caught:
            run_train(spark, config(), features_path=str(features), model_dir=str(tiny / "model"))
        message = str(caught.value)
        assert caught.value.exit_code == 4 and "\n" not in message
        assert "staging" not in message, message  # it was removed: not named
        assert sorted(p.name for p in tiny.iterdir()) == []  # no model, staging or lock
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
    run_train(spark, config(), features_path=str(features), model_dir=str(tiny / "model"))
    assert (tiny / "model" / "_SUCCESS").exists()
