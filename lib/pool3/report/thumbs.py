"""Small pictures of the images behind the numbers, as data URIs for ``report.html``.

Only the few images the report shows are read again, from their paths, through the storage
layer (:func:`pool3.storage.fs.read_bytes`: Hadoop's FileSystem, or ``pyarrow.fs`` without
a JVM), so ``hdfs://`` and ``s3a://`` collections work like local ones. They are decoded
with pool3's own decoder (large JPEGs at a reduced DCT scale), shrunk to ``px`` on the
longest side and stored as JPEG: a few KB each. An image that cannot be read or decoded
any more gets its reason instead, shown in its place.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image
from pyspark.sql import SparkSession

from pool3.images.decode import ImageDecodeError, decode
from pool3.storage.fs import FS_ERRORS, read_bytes, why

log = logging.getLogger(__name__)

#: files read at once (latency of object stores)
READERS = 8
JPEG_QUALITY = 80
#: files larger than this are not read again for a thumbnail
MAX_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Thumb:
    """``uri``: a ``data:image/jpeg;base64,...`` URI, or None with ``error`` saying why."""

    uri: str | None
    error: str | None = None


def _thumb(spark: SparkSession | None, path: str, px: int) -> Thumb:
    try:
        data = read_bytes(spark, path)
    except FS_ERRORS as err:
        return Thumb(None, f"cannot be read any more: {why(err)}")
    except Exception as err:  # e.g. a store this machine cannot open: one picture, not the report
        return Thumb(None, f"cannot be read from here: {err}")
    if len(data) > MAX_FILE_BYTES:
        return Thumb(None, f"not shown: {len(data) // 2**20} MB file")
    try:
        pixels = decode(data, target_size=px).pixels
    except ImageDecodeError as err:
        return Thumb(None, f"cannot be decoded any more: {err}")
    img = Image.fromarray(pixels)
    img.thumbnail((px, px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Thumb("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))


def thumbnails(
    spark: SparkSession | None, paths: Iterable[str], *, px: int = 96
) -> dict[str, Thumb]:
    """``{path: Thumb}`` for each distinct path, read ``READERS`` at a time.

    Never raises for one image: an unreadable or undecodable one gets a :class:`Thumb`
    with ``error``.
    """
    wanted = list(dict.fromkeys(str(p) for p in paths))
    if not wanted:
        return {}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(READERS, len(wanted))) as pool:
        made = list(pool.map(lambda p: _thumb(spark, p, px), wanted))
    failed = [p for p, t in zip(wanted, made, strict=True) if t.uri is None]
    log.info(
        "report: %d thumbnails read again in %.1f s%s",
        len(wanted) - len(failed),
        time.monotonic() - started,
        f"; {len(failed)} could not be (e.g. {failed[0]})" if failed else "",
    )
    return dict(zip(wanted, made, strict=True))
