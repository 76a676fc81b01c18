"""pool3.images.labels: the tutorial's file-name rule, folders, manifests, label modes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from paths import IMAGES
from pool3.errors import ConfigError, InputError
from pool3.images.labels import (
    LABEL_MODES,
    label_from_filename,
    label_from_folder,
    labels_for_paths,
    parse_label_mode,
    read_manifest,
)

NAMES = IMAGES / "names"


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("images/baby_shoe_0.jpg", "baby_shoe"),
        ("images/car_GPS_12.JPG", "car_GPS"),
        ("mobile_accessory_0.JPG", "mobile_accessory"),
        ("file:/work/x/baby_shoe_0.jpg", "baby_shoe"),
        ("file:///work/x/boot_7.png", "boot"),
        ("hdfs://nn:8020/imgs/boot_7.png", "boot"),
        ("a_1_b_2.jpg", "a_1_b"),  # the last _<digits> counts
        ("dir.v2/shoe_3", "shoe"),  # no extension
        ("archive_3.tar.gz", None),  # stem is archive_3.tar
        ("shoe.jpg", None),
        ("shoe_12b.jpg", None),
        ("_1.jpg", None),
        ("images/", None),
        # Spark 4's binaryFile paths are not percent-encoded: '%' is literal.
        ("file:/d/space name_1.jpg", "space name"),
        ("file:/d/café_1.jpg", "café"),
        ("file:/d/hash#_1.jpg", "hash#"),
        ("file:/d/100%_1.jpg", "100%"),
        ("file:/d/a%20b_1.jpg", "a%20b"),
        ("file:/d/<script>_1.jpg", "<script>"),
    ],
)
def test_label_from_filename(path: str, label: str | None) -> None:
    assert label_from_filename(path) == label


@pytest.mark.parametrize(
    ("uri", "label"),
    [
        ("file:/d/space%20name_1.jpg", "space name"),
        ("file:/d/caf%C3%A9_1.jpg", "café"),
        ("file:/d/hash%23_1.jpg", "hash#"),
        ("file:/d/100%25_1.jpg", "100%"),
        ("file:/d/a%2520b_1.jpg", "a%20b"),
        ("file:/d/%3Cscript%3E_1.jpg", "<script>"),
    ],
)
def test_label_from_percent_encoded_uri(uri: str, label: str) -> None:
    assert label_from_filename(uri, url_encoded=True) == label


def test_labels_of_real_odd_file_names_raw_and_encoded() -> None:
    files = sorted(NAMES.iterdir())
    expected = [f.name.removesuffix("_1.jpg") for f in files]
    assert len(files) == 6
    # As Spark 4 binaryFile gives them, and as percent-encoded file:// URIs.
    assert [label_from_filename(f"file:{f}") for f in files] == expected
    assert [label_from_filename(f.as_uri(), url_encoded=True) for f in files] == expected
    assert label_from_folder(files[0].as_uri(), url_encoded=True) == "names"


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("file:/data/boot/x_1.jpg", "boot"),
        ("/data/ankle boot/x.jpg", "ankle boot"),
        ("boot/x.jpg", "boot"),
        ("x.jpg", None),
        ("/x.jpg", None),
        ("../x.jpg", None),
    ],
)
def test_label_from_folder(path: str, label: str | None) -> None:
    assert label_from_folder(path) == label


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("filename", ("filename", None)),
        ("folder", ("folder", None)),
        ("none", ("none", None)),
        ("manifest:labels.csv", ("manifest", "labels.csv")),
        ("manifest:/abs/my labels.parquet", ("manifest", "/abs/my labels.parquet")),
    ],
)
def test_parse_label_mode(spec: str, parsed: tuple[str, str | None]) -> None:
    assert parse_label_mode(spec) == parsed
    assert parsed[0] in LABEL_MODES


@pytest.mark.parametrize("spec", ["", "Filename", "folders", "manifest", "manifest:", "csv:x"])
def test_parse_label_mode_rejects_others(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"expected filename, folder, none or manifest:FILE"):
        parse_label_mode(spec)


def test_read_manifest_csv_keeps_text_as_written(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(
        'path,label,extra\n"/d/a, b_1.jpg",NA,x\nfile:/d/c.jpg,007,y\n~/e.jpg,shoe,z\n'
        "./rel/f.jpg,boot,w\n/d/c.jpg,007,dup\n",
        encoding="utf-8",
    )
    assert read_manifest(csv) == {
        "/d/a, b_1.jpg": "NA",
        "/d/c.jpg": "007",
        "~/e.jpg": "shoe",  # never shell-expanded
        "rel/f.jpg": "boot",
    }


def test_read_manifest_parquet_file_and_folder(tmp_path: Path) -> None:
    frame = pd.DataFrame({"label": ["bag", "coat"], "path": ["/d/x.png", "$HOME/y.png"]})
    frame.to_parquet(tmp_path / "m.parquet")
    folder = tmp_path / "spark_out"
    folder.mkdir()
    frame.iloc[:1].to_parquet(folder / "part-0.parquet")
    frame.iloc[1:].to_parquet(folder / "part-1.parquet")
    expected = {"/d/x.png": "bag", "$HOME/y.png": "coat"}
    assert read_manifest(tmp_path / "m.parquet") == expected
    assert read_manifest(folder) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,label\na.jpg,x\n", r"lacks column\(s\) \['path'\]"),
        ("path,label\na.jpg,\n", "empty path or label"),
        ("path,label\na.jpg,x\na.jpg,y\n", "different labels to the same path"),
    ],
)
def test_read_manifest_rejects_bad_tables(tmp_path: Path, content: str, message: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_manifest(csv)


def test_read_manifest_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")


def test_labels_for_paths_in_every_mode() -> None:
    paths = pd.Series(
        ["file:/in/boots/boot_3.jpg", "file:/in/x/readme.txt", "file:/in/bags/b_1.jpg"],
        index=[10, 11, 12],
    )
    manifest = {"/in/boots/boot_3.jpg": "boot", "bags/b_1.jpg": "bag", "b_1.jpg": "other"}
    expected = {
        "filename": ["boot", None, "b"],
        "folder": ["boots", "x", "bags"],
        "none": [None, None, None],
        "manifest": ["boot", None, "bag"],  # longest relative tail wins over "b_1.jpg"
    }
    for mode in LABEL_MODES:
        result = labels_for_paths(paths, mode, manifest)
        assert result.dtype == object
        assert list(result.index) == [10, 11, 12]
        assert result.tolist() == expected[mode]


def test_labels_for_paths_errors() -> None:
    paths = pd.Series(["a_1.jpg"])
    with pytest.raises(ConfigError, match="needs the manifest"):
        labels_for_paths(paths, "manifest")
    with pytest.raises(ConfigError, match="unknown label mode 'file'"):
        labels_for_paths(paths, "file")
    encoded = labels_for_paths(pd.Series(["file:/d/caf%C3%A9_2.jpg"]), "filename", url_encoded=True)
    assert encoded.tolist() == ["café"]
