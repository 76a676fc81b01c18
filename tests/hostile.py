"""A hostile image collection: the names and leftovers real copies from cameras, phones,
Macs, NAS boxes and Windows shares hold, built from real bundled images.

``build(root)`` writes it and returns what pool3 must make of it: the image names (one row
each) and the ignored files by reason. :func:`find_count` asks the real ``find`` how many
files there are, so a test can check ``images + ignored`` against it.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from paths import SAMPLE

#: images (relative paths) that decode: every character a name may hold
GOOD = (
    "shot 12:30:00_0.png",
    "a [1]_1.png",
    "b {x}_2.png",
    "star*_3.png",
    "what?_4.png",
    "hash#_5.png",
    "pct%20_6.png",
    "café ü_7.png",
    "new\nline_8.png",
    "back\\slash_9.png",
    "deep/er/x:y_10.png",
    "upper_11.PNG",
    "_MG_1234.JPG",  # Canon Adobe RGB: starts with "_", an ordinary file
    "_selects/pick_12.png",  # a folder starting with "_"
    "_selects/_temporary/kept_13.png",
    "badcrc_14.png",  # a tEXt chunk with a wrong CRC: viewers show it, so do we
    "spark export/e_19.png",  # a folder a Spark job wrote images into: _SUCCESS alone
)
#: images that get an error row, with the category
FAILING = {"zero_15.jpg": "empty", "cut_16.jpg": "truncated"}
#: a Latin-1 name from an old camera or zip: not UTF-8, so it cannot be a Parquet string as
#: is; its row names it with the byte escaped, and says how to fix it
LATIN1_NAME = b"caf\xe9_20.png"
LATIN1_ROW = "caf\\xe9_20.png"
HIDDEN = (
    ".DS_Store",
    "._shot 12:30:00_0.png",  # AppleDouble resource fork
    "__MACOSX/a_1.png",
    "__MACOSX/._a_1.png",
    ".thumbnails/t_1.png",
    "@eaDir/pick_12.png/SYNOPHOTO_THUMB_M.jpg",  # Synology thumbnails
    "Thumbs.db",
    "_selects/desktop.ini",
    ".git/objects/ab.png",
)
NOT_IMAGE = (
    "notes.txt",
    "upload_17.png._COPYING_",
    "README",
    "clip_18.mov",
    "spark export/_SUCCESS",
)
#: a pool3 model directory someone wrote inside the collection
OUTPUT = (
    "old model/_SUCCESS",
    "old model/_pool3_manifest.json",
    "old model/confusion_matrix.png",
    "old model/classifier.json",
    # a killed run's lock and staging next to an output it was writing (here, in the input)
    ".old feats.pool3-lock",
    ".old feats.pool3-staging-0123456789abcdef/part-00000_1.png",
)


@dataclass
class Collection:
    root: Path
    images: set[str] = field(default_factory=set)  # relative paths with a row
    failing: dict[str, str] = field(default_factory=dict)  # relative path -> error category
    ignored: dict[str, int] = field(default_factory=dict)


def png_with_bad_ancillary_crc(png: bytes) -> bytes:
    """``png`` with a ``tEXt`` chunk whose CRC is off by one, right after ``IHDR``."""
    text = b"Comment\x00written by a camera app with a CRC bug"
    crc = (zlib.crc32(b"tEXt" + text) + 1) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", crc)
    return png[:33] + chunk + png[33:]


def build(root: Path) -> Collection:
    sources = sorted(SAMPLE.glob("*.png"))
    root.mkdir(parents=True)
    col = Collection(root)

    def write(rel: str, data: bytes) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    for i, rel in enumerate(GOOD):
        png = sources[i % len(sources)].read_bytes()
        if rel.endswith(".JPG"):
            buf = io.BytesIO()
            Image.open(io.BytesIO(png)).convert("RGB").save(buf, "JPEG", quality=92)
            png = buf.getvalue()
        elif rel.startswith("badcrc"):
            png = png_with_bad_ancillary_crc(png)
        write(rel, png)
        col.images.add(rel)
    buf = io.BytesIO()
    Image.open(sources[0]).convert("RGB").resize((64, 64)).save(buf, "JPEG")
    write("zero_15.jpg", b"")
    write("cut_16.jpg", buf.getvalue()[: len(buf.getvalue()) // 2])
    col.images.update(FAILING)
    col.failing.update(FAILING)
    (root / os.fsdecode(LATIN1_NAME)).write_bytes(sources[2].read_bytes())
    col.images.add(LATIN1_ROW)
    col.failing[LATIN1_ROW] = "unreadable"
    for rel in HIDDEN + NOT_IMAGE:
        write(rel, sources[0].read_bytes() if rel.endswith((".png", ".jpg")) else b"x")
    for rel in OUTPUT:
        write(rel, b"{}" if rel.endswith(".json") else sources[1].read_bytes())
    col.ignored = {"hidden": len(HIDDEN), "not_image": len(NOT_IMAGE), "output": len(OUTPUT)}
    return col


def find_count(root: Path, *, follow: bool = False) -> int:
    """Regular files under ``root``, as the real ``find -type f`` counts them; with
    ``follow``, every entry but folders, links followed (``find -L ! -type d``)."""
    args = (
        ["find", "-L", str(root), "!", "-type", "d"]
        if follow
        else ["find", str(root), "-type", "f"]
    )
    out = subprocess.run(
        [*args, "-printf", "."],
        check=not follow,  # find -L exits 1 after reporting a loop, having counted the rest
        capture_output=True,
        text=True,
    ).stdout
    return len(out)


def relative(path: str, root: Path) -> str:
    """A row's path (``file:/abs/...``) relative to ``root``."""
    prefix = f"file:{root}/"
    assert path.startswith(prefix), (path, prefix)
    return path[len(prefix) :]


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True)
