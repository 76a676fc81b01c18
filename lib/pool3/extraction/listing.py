"""Listing the input: every file under a path, each one an image row or an ignored count.

The input is a literal path or URI (never a glob). It is listed on the driver through
:mod:`pool3.storage.files` (pyarrow.fs; no Spark job, no Hadoop path parsing), and every
regular file under it ends up in exactly one place:

image
    Its name ends in one of ``featurize.extensions`` (case-insensitive) and no rule below
    applies: it gets a row, with an error if it cannot be read or decoded. Names starting
    with ``_`` (Canon's ``_MG_1234.JPG``, a ``_selects/`` folder) are ordinary files.
ignored, ``output``
    It lies in a folder holding ``_pool3_manifest.json``, or ``_SUCCESS`` next to
    ``part-*`` files or ``classifier.json`` (a feature table, any Spark table, a model
    directory), or under the run's own ``--output``. An output inside the input is never
    read back as images; ``_SUCCESS`` alone (images a Spark job exported) is not enough.
ignored, ``hidden``
    A path component below the input starts with ``.`` (``.DS_Store``, AppleDouble
    ``._IMG_1.jpg``, ``.Trashes/``, ``.git/``, pool3's own ``.staging-*``), or is a folder
    that tools keep their thumbnails and trash in (:data:`HIDDEN_FOLDERS`: ``__MACOSX``,
    Synology's ``@eaDir`` ...), or is Windows' ``Thumbs.db`` / ``desktop.ini``.
ignored, ``not_image``
    Any other extension (``notes.txt``, ``IMG_1.jpg._COPYING_`` of an upload in progress).
ignored, ``special``
    A FIFO, socket or device node with any name (reading one could block the job).

So ``images + ignored`` is what ``find -L INPUT ! -type d`` counts. Folders that cannot
be listed (permissions) are logged and named in the manifest; the files in them are
unknown. On the local file system symbolic links are followed (:mod:`pool3.storage.walk`:
a link farm of class folders works, a link back into its own ancestors is not followed),
a broken link to an image name gets its row (``missing``), and a name that is not UTF-8
gets an ``unreadable`` row that shows the byte escaped. A single file given as the input
is an image whatever its name.

Featurize and classify list their input the same way (:func:`input_images`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType

from pool3.config import Config
from pool3.connect import default_parallelism, task_slots
from pool3.errors import InputError
from pool3.storage import files as storage_files
from pool3.storage.commit import MANIFEST_NAME, SUCCESS_NAME
from pool3.storage.files import UNREADABLE, Root
from pool3.storage.fs import on_default_fs
from pool3.storage.lock import is_run_entry
from pool3.storage.walk import printable, walk_local, walk_remote

log = logging.getLogger(__name__)

#: Folders of thumbnails, resource forks and trash that tools create next to photos.
HIDDEN_FOLDERS = frozenset(
    {"__MACOSX", "@eaDir", "#recycle", "#snapshot", "$RECYCLE.BIN", "System Volume Information"}
)
#: Files Windows creates in picture folders.
HIDDEN_FILES = frozenset({"Thumbs.db", "ehthumbs.db", "desktop.ini"})
IGNORE_REASONS = ("output", "hidden", "not_image", "special")
#: Files per Spark task when ``featurize.partitions`` is 0 (auto): small enough for retries
#: and progress, large enough that task start-up (~10 ms) is noise.
FILES_PER_TASK = 128
#: Example paths kept per ignore reason, for the manifest and the log.
EXAMPLES = 5


@dataclass
class Listing:
    """What the input holds: image files (row URI and size), and counts of the rest."""

    root: Root
    paths: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    ignored_by_reason: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(IGNORE_REASONS, 0)
    )
    examples: dict[str, list[str]] = field(default_factory=dict)
    unlisted: list[str] = field(default_factory=list)
    #: rows decided at listing time (a name that is not UTF-8), by path
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.paths)

    @property
    def ignored(self) -> int:
        return sum(self.ignored_by_reason.values())

    def ignore(self, reason: str, uri: str) -> None:
        self.ignored_by_reason[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < EXAMPLES:
            kept.append(uri)

    def summary(self) -> dict[str, Any]:
        """The counts for a run summary: ``images + ignored`` = files under the input."""
        return {
            "ignored": self.ignored,
            "ignored_by_reason": {k: v for k, v in self.ignored_by_reason.items() if v},
            **({"unlisted_folders": len(self.unlisted)} if self.unlisted else {}),
        }

    def manifest(self) -> dict[str, Any]:
        """Counts, example paths per reason and the folders that could not be listed."""
        return {**self.summary(), "ignored_examples": self.examples, "unlisted": self.unlisted}


def _is_output(names: set[str]) -> bool:
    """Whether a folder holding these names is an output of pool3 or Spark."""
    if MANIFEST_NAME in names:
        return True
    return SUCCESS_NAME in names and (
        "classifier.json" in names or any(n.startswith("part-") for n in names)
    )


def _hidden(parts: tuple[str, ...]) -> bool:
    *folders, name = parts
    return (
        any(p.startswith(".") or p in HIDDEN_FOLDERS for p in folders)
        or name.startswith(".")
        or name in HIDDEN_FILES
    )


def list_input(
    input_path: str, *, extensions: tuple[str, ...] | list[str], exclude: str | None = None
) -> Listing:
    """List ``input_path`` (a folder, or one file): image files and ignored counts.

    ``exclude`` is the run's output: files under it are ignored as ``output`` when it lies
    inside the input. Raises InputError if the input does not exist or cannot be listed.
    """
    root = storage_files.resolve(input_path)
    info = storage_files.stat(root, shown=input_path)
    listing = Listing(root)
    if info.type == pafs.FileType.File:
        listing.paths.append(root.uri)
        listing.lengths.append(int(info.size or 0))
        return listing
    walk = walk_local if root.local else walk_remote
    found = sorted(walk(root, listing.unlisted), key=lambda e: e.parts)
    names: dict[tuple[str, ...], set[str]] = {}
    for e in found:
        names.setdefault(e.parts[:-1], set()).add(e.parts[-1])
    outputs = {folder for folder, held in names.items() if _is_output(held)}
    if exclude is not None:
        inside = _below(root, exclude)
        if inside is not None:
            outputs.add(inside)
    wanted = {"." + e.lower().lstrip(".") for e in extensions}
    for entry in found:
        raw = root.uri_of(entry.fs_path)
        uri = printable(raw)
        if any(entry.parts[:i] in outputs for i in range(len(entry.parts))) or any(
            is_run_entry(part) for part in entry.parts
        ):  # inside an output, or a run's lock, heartbeat, staging or trash next to one
            listing.ignore("output", uri)
        elif _hidden(entry.parts):
            listing.ignore("hidden", uri)
        elif entry.kind == "special":
            listing.ignore("special", uri)
        elif os.path.splitext(entry.parts[-1])[1].lower() not in wanted:
            listing.ignore("not_image", uri)
        else:
            listing.paths.append(uri)
            listing.lengths.append(entry.size)
            if uri != raw:  # the name is not UTF-8
                listing.errors[uri] = (
                    f"{UNREADABLE}: the file name is not valid UTF-8 (written by another "
                    "system's encoding); rename it, e.g. convmv -f latin1 -t utf8"
                )
    return listing


def _below(root: Root, output: str) -> tuple[str, ...] | None:
    """Components of the ``output`` URI below ``root`` (same file system), or None."""
    try:
        other = storage_files.resolve(output)
    except Exception:  # an unusable output URI is reported by the output checks
        return None
    if not storage_files.same_store(root, other):
        return None
    if other.fs_path.rstrip("/") == root.fs_path.rstrip("/"):
        return ()
    prefix = root.fs_path.rstrip("/") + "/"
    if not other.fs_path.startswith(prefix):
        return None
    return tuple(other.fs_path[len(prefix) :].rstrip("/").split("/"))


#: a StructType, not DDL: parsing DDL is a JVM call (~0.3 s on a cold driver JVM)
FILES_SCHEMA = StructType(
    [
        StructField("path", StringType()),
        StructField("length", LongType()),
        StructField("listing_error", StringType()),
    ]
)


def files_frame(spark: SparkSession, listing: Listing, *, partitions: int = 0) -> DataFrame:
    """The image files as a Spark frame (``path, length``), spread over tasks.

    ``partitions`` 0 means one task per :data:`FILES_PER_TASK` files, at least one per
    slot; the bytes are read in the workers, so a task's memory does not depend on it.
    """
    frame = pd.DataFrame(
        {
            "path": listing.paths,
            "length": listing.lengths,
            "listing_error": [listing.errors.get(p) for p in listing.paths],
        }
    )
    return spark.createDataFrame(frame, FILES_SCHEMA).repartition(
        task_count(spark, listing, partitions)
    )


def task_count(spark: SparkSession, listing: Listing, partitions: int = 0) -> int:
    """Spark tasks for the listing's files: ``partitions``, or about one per
    :data:`FILES_PER_TASK` files, rounded up to whole waves of the session's task slots (7
    equal tasks on 2 slots left one core idle for the last seventh of an 800-image run)."""
    slots = task_slots(spark)
    waves = math.ceil(math.ceil(listing.total / FILES_PER_TASK) / slots)
    n = partitions or max(default_parallelism(spark), slots * waves)
    return max(1, min(n, listing.total))


def input_images(
    spark: SparkSession, config: Config, input_path: str, *, exclude: str | None = None
) -> tuple[DataFrame, Listing]:
    """List the input and frame its images; InputError if missing, unreadable or empty.

    Paths without scheme are taken on ``fs.defaultFS``, like Spark's own readers.
    """
    listing = list_input(
        on_default_fs(spark, input_path),
        extensions=config.featurize.extensions,
        exclude=None if exclude is None else on_default_fs(spark, exclude),
    )
    by_reason = ", ".join(f"{k}: {v}" for k, v in listing.summary()["ignored_by_reason"].items())
    log.info(
        "listed %d images under %s; ignored %d files%s",
        listing.total,
        listing.root.uri,
        listing.ignored,
        f" ({by_reason})" if by_reason else "",
    )
    if listing.total == 0:
        raise InputError(
            f"no images found under {input_path}: expected files with extensions "
            f"{', '.join(config.featurize.extensions)} (case-insensitive)"
            + (
                f"; {listing.ignored} files were ignored ({by_reason}; see README "
                "'Data quality and failures')"
                if listing.ignored
                else ""
            )
            + "; check --input or featurize.extensions"
        )
    return files_frame(spark, listing, partitions=config.featurize.partitions), listing
