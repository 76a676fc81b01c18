"""Real collections: every image-like file gets a row, nothing else is read, and no file can
stop the job (real files, real Spark, a real race from a test thread).

The listing rules themselves (links, FIFOs, outputs, schemes) are checked without Spark.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import hostile
from conftest import SPARK_TEST_OVERRIDES
from paths import SAMPLE
from pool3.commands.featurize import run_featurize
from pool3.config import load_config
from pool3.errors import ConfigError, InputError
from pool3.extraction.listing import list_input
from pool3.storage import files

EXTENSIONS = ("jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff")


def config(**overrides):
    base = {"featurize.max_error_rate": 1.0, "model.precision": "float32"}
    return load_config(overrides={**SPARK_TEST_OVERRIDES, **base, **overrides}, env={})


def rows_by_name(out: Path, root: Path) -> dict[str, dict]:
    table = pq.read_table(out, columns=["path", "error", "features", "label"]).to_pylist()
    rows = {hostile.relative(r["path"], root): r for r in table}
    assert len(rows) == len(table), "a path has two rows"
    return rows


class AfterListing(logging.Handler):
    """Runs ``action`` in a thread of the test the first time the driver has listed the
    input, and lets the run go on only when it is done: the files change between listing
    and reading."""

    def __init__(self, action) -> None:
        super().__init__(logging.INFO)
        self.action, self.fired = action, 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("listed "):
            self.fired += 1
            if self.fired > 1:
                return
            worker = threading.Thread(target=self.action, name="test-race")
            worker.start()
            worker.join(timeout=30)


@pytest.fixture()
def after_listing():
    logger = logging.getLogger("pool3.extraction.listing")
    handlers: list[AfterListing] = []
    old_level = logger.level
    logger.setLevel(logging.INFO)

    def install(action) -> AfterListing:
        handler = AfterListing(action)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield install
    for h in handlers:
        logger.removeHandler(h)
    logger.setLevel(old_level)


OWN_RUN_ENTRIES = 2  # .<output>.pool3-lock and its one heartbeat file


def test_hostile_collection_featurizes_every_image_and_survives_a_race(
    spark, tmp_path, after_listing
):
    # The input's own name holds glob characters: it is taken literally.
    col = hostile.build(tmp_path / "fm [2019] {raw}*")
    root = col.root
    sample = sorted(SAMPLE.glob("*.png"))
    for name in ("gone_20.png", "grown_21.png", "now_a_folder_22.png"):
        shutil.copy(sample[0], root / name)
    files_before = hostile.find_count(root)

    def race() -> None:  # runs after the listing, before any worker reads a file
        (root / "gone_20.png").unlink()
        with open(root / "grown_21.png", "ab") as f:
            f.write(b"\0" * 1000)
        (root / "now_a_folder_22.png").unlink()
        (root / "now_a_folder_22.png").mkdir()

    hook = after_listing(race)
    # The output goes inside the input: the next run must not read it back.
    out = root / "features out"
    summary = run_featurize(spark, config(), input_path=str(root), output_path=str(out))
    assert hook.fired == 1  # listed once (no listing after the race)

    expected = col.images | {"gone_20.png", "grown_21.png", "now_a_folder_22.png"}
    rows = rows_by_name(out, root)
    assert set(rows) == expected
    assert summary["images"] == len(expected)
    # The run's own lock and heartbeat, next to its output (so in the input), are listed too:
    # ignored as "output", like the output itself.
    assert summary["images"] + summary["ignored"] == files_before + OWN_RUN_ENTRIES
    assert summary["ignored_by_reason"] == {
        **col.ignored,
        "output": col.ignored.get("output", 0) + OWN_RUN_ENTRIES,
    }
    for name in col.images - set(col.failing):
        assert rows[name]["error"] is None, (name, rows[name]["error"])
        assert len(rows[name]["features"]) == 2048
    for name, category in col.failing.items():
        assert rows[name]["error"].startswith(f"{category}:"), rows[name]["error"]
    assert rows["gone_20.png"]["error"].startswith("missing: the file no longer exists")
    assert rows["grown_21.png"]["error"].startswith("changed: listed with ")
    assert rows["now_a_folder_22.png"]["error"].startswith("unreadable: ")
    assert rows["shot 12:30:00_0.png"]["label"] == "shot 12:30:00"
    assert rows["new\nline_8.png"]["label"] == "new\nline"
    reasons = summary["errors_by_reason"]
    # unreadable: the folder now, and the Latin-1 name
    assert reasons == {"changed": 1, "empty": 1, "missing": 1, "truncated": 1, "unreadable": 2}

    listed = json.loads((out / "_pool3_manifest.json").read_text())["extra"]["listing"]
    assert listed["ignored_by_reason"] == summary["ignored_by_reason"]
    examples = listed["ignored_examples"]["output"]
    assert len(examples) == 5 and any(".old feats.pool3-lock" in e for e in examples)

    # Second run, same output (overwrite): the committed output inside the input is ignored.
    files_now = hostile.find_count(root)
    in_output = hostile.find_count(out)
    again = run_featurize(
        spark, config(**{"output.mode": "overwrite"}), input_path=str(root), output_path=str(out)
    )
    assert again["images"] == len(expected) - 2  # gone, and a folder now
    assert again["ignored_by_reason"]["output"] == (
        len(hostile.OUTPUT) + in_output + OWN_RUN_ENTRIES
    )
    assert again["images"] + again["ignored"] == files_now + OWN_RUN_ENTRIES
    assert again["errors_by_reason"] == {"empty": 1, "truncated": 1, "unreadable": 1}


def test_listing_rules(tmp_path):
    col = hostile.build(tmp_path / "c")
    listing = list_input(str(col.root), extensions=EXTENSIONS)
    assert {hostile.relative(p, col.root) for p in listing.paths} == col.images
    assert listing.total + listing.ignored == hostile.find_count(col.root)
    assert listing.examples["output"][0].endswith("/.old feats.pool3-lock")  # a run's lock
    assert listing.examples["output"][2].endswith("old model/_SUCCESS")
    # the same through a file:// URI, and with the run's output inside the input excluded
    out = col.root / "_selects" / "out"
    out.mkdir()
    (out / "part-0.parquet").write_bytes(b"PAR1")
    by_uri = list_input(f"file://{col.root}", extensions=EXTENSIONS, exclude=str(out))
    assert by_uri.paths == listing.paths
    assert by_uri.ignored_by_reason["output"] == len(hostile.OUTPUT) + 1


def test_links_fifos_and_single_files(tmp_path):
    root = tmp_path / "links"
    real = tmp_path / "real class"
    real.mkdir()
    root.mkdir()
    src = sorted(SAMPLE.glob("*.png"))[0]
    shutil.copy(src, real / "boot_1.png")
    (root / "boot").symlink_to(real, target_is_directory=True)  # a link farm of class folders
    (root / "boot again").symlink_to(real, target_is_directory=True)  # reached twice: two rows
    (root / "loop").symlink_to(root, target_is_directory=True)  # a cycle: not followed
    (root / "gone_2.png").symlink_to(tmp_path / "nowhere.png")  # broken: a row, "missing"
    os.mkfifo(root / "pipe_3.png")  # reading it would block: ignored as special
    listing = list_input(str(root), extensions=EXTENSIONS)
    names = [p.removeprefix(f"file:{root}/") for p in listing.paths]
    assert names == ["boot/boot_1.png", "boot again/boot_1.png", "gone_2.png"]
    assert listing.ignored_by_reason["special"] == 1
    # every entry but folders, links followed, loops skipped: what find -L counts
    assert listing.total + listing.ignored == hostile.find_count(root, follow=True) == 4
    data, error = files.read_file(listing.root, listing.paths[2], 0, max_bytes=1 << 20)
    assert data is None and error.startswith("missing:")
    # one file given as the input is an image whatever its extension
    one = list_input(str(real / "boot_1.png"), extensions=("jpg",))
    assert one.paths == [f"file:{real}/boot_1.png"] and one.lengths == [src.stat().st_size]


def test_a_name_that_is_not_utf8_gets_its_row(tmp_path):
    (tmp_path / os.fsdecode(hostile.LATIN1_NAME)).write_bytes(b"x")
    listing = list_input(str(tmp_path), extensions=EXTENSIONS)
    (path,) = listing.paths
    assert path == f"file:{tmp_path}/{hostile.LATIN1_ROW}"
    path.encode("utf-8")  # a valid Parquet string
    assert listing.errors[path].startswith("unreadable: the file name is not valid UTF-8")


def test_read_file_never_raises_for_a_file(tmp_path):
    (tmp_path / "a.png").write_bytes(b"12345")
    root = files.resolve(str(tmp_path))
    uri = f"file:{tmp_path}/a.png"
    assert files.read_file(root, uri, 5, max_bytes=10) == (b"12345", None)
    assert files.read_file(root, uri, 5, max_bytes=4)[1].startswith("too_large:")
    assert files.read_file(root, uri, 7, max_bytes=10)[1].startswith("changed: listed with 7")
    assert files.read_file(root, uri + "x", 5, max_bytes=10)[1].startswith("missing:")
    (tmp_path / "d.png").mkdir()
    assert files.read_file(root, f"file:{tmp_path}/d.png", 0, max_bytes=10)[1].startswith(
        "unreadable:"
    )


def test_input_uris_and_their_errors(tmp_path):
    root = files.resolve(f"file:///{str(tmp_path).lstrip('/')}/x [1]/")
    assert root.uri == f"file:{tmp_path}/x [1]" and root.fs_path == f"{tmp_path}/x [1]"
    assert root.uri_of(f"{tmp_path}/x [1]/a:b.png") == f"file:{tmp_path}/x [1]/a:b.png"
    assert root.fs_path_of(f"file:{tmp_path}/x [1]/a:b.png") == f"{tmp_path}/x [1]/a:b.png"
    assert files.resolve("relative dir").fs_path == os.path.abspath("relative dir")
    assert files.resolve("a:b.png").fs_path == os.path.abspath("a:b.png")  # a name, no scheme
    assert files.resolve("//data//x/").uri == "file:/data/x"
    assert files.resolve("FILE:///data/x").uri == "file:/data/x"
    top = files.resolve("/")
    assert (top.uri, top.fs_path, top.uri_of("/a b")) == ("file:/", "/", "file:/a b")
    # remote URIs: the path is literal (no query, fragment or percent decoding)
    assert files._split("s3a://b/fm [2019]/100%25#x?y") == ("s3a", "b", "/fm [2019]/100%25#x?y")
    assert files._split("hdfs:/x") == ("hdfs", "", "/x")
    assert files._split("hdfs:///x") == ("hdfs", "", "/x")
    with pytest.raises(InputError, match=r"does not exist"):
        list_input(str(tmp_path / "missing"), extensions=EXTENSIONS)
    with pytest.raises(ConfigError, match=r"not ftp://"):
        files.resolve("ftp://host/x")
    with pytest.raises(ConfigError, match=r"names host 'server'"):
        files.resolve("file://server/share/x")
    with pytest.raises(ConfigError, match=r"names no bucket"):
        files.resolve("s3a:///x")
    # no libhdfs on this machine: said before any work, with what to set
    with pytest.raises(files.FileSystemUnavailable, match=r"libhdfs.*CLASSPATH"):
        files.resolve("hdfs:///data/x")


def test_outputs_on_the_same_store_are_recognised():
    hdfs = files.Root("hdfs://nn:8020/in", "/in", "hdfs", "hdfs://nn:8020")
    assert files.same_store(hdfs, files.Root("hdfs://nn/in/o", "/in/o", "hdfs", "hdfs://nn"))
    assert files.same_store(hdfs, files.Root("hdfs:///in/o", "/in/o", "hdfs", "hdfs://"))
    s3 = files.Root("s3://b/in", "b/in", "s3", "s3://b")
    assert files.same_store(s3, files.Root("s3a://b/in/o", "b/in/o", "s3a", "s3://b"))
    assert not files.same_store(s3, files.Root("s3a://c/in", "c/in", "s3a", "s3://c"))
    assert not files.same_store(s3, hdfs)
