"""The commit protocol of an output: staging -> manifest, extra files, ``_SUCCESS`` -> swap.

See :mod:`pool3.storage.outputs` for the whole life of an output. ``commit_output`` and
``abort_output`` end the run's ownership of the output (its lock, :mod:`pool3.storage.lock`).
``_SUCCESS`` is written last, so a directory with it is complete; the swap renames an
existing output to a hidden trash sibling, staging to the final path, then deletes the
trash. A rename is atomic on HDFS and local disks but a copy on object stores (s3a):
readers there must check ``_SUCCESS``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from pool3.errors import OutputError
from pool3.storage.fs import (
    FS_ERRORS,
    delete,
    exists,
    join,
    list_names,
    mkdirs,
    parent_and_name,
    rename,
    why,
    write_bytes,
    write_text,
)
from pool3.storage.integrity import PARTS_KEY, data_files
from pool3.storage.lock import OutputLock, owned_name
from pool3.storage.manifest import jsonable, utc_now

logger = logging.getLogger(__name__)

SUCCESS_NAME = "_SUCCESS"
MANIFEST_NAME = "_pool3_manifest.json"


@dataclass(frozen=True)
class OutputTarget:
    """Where a run writes (``staging``) and where its output appears on commit (``final``).

    ``lock`` is this run's ownership of ``final`` (:mod:`pool3.storage.lock`); ``existing`` is
    ``"none"``, ``"complete"`` (``_SUCCESS`` present: an ``incremental`` run
    reads it before writing old + new rows to staging) or ``"incomplete"``.
    """

    final: str
    staging: str
    mode: str
    run_id: str | None
    existing: str = "none"
    lock: OutputLock | None = field(default=None, compare=False, repr=False)


def is_complete(spark: SparkSession | None, path: str) -> bool:
    """Whether ``path`` is a committed output (has ``_SUCCESS``)."""
    return exists(spark, join(path, SUCCESS_NAME))


def commit_output(
    spark: SparkSession | None,
    target: OutputTarget,
    *,
    manifest: Mapping[str, object],
    extra_files: Mapping[str, str | bytes] | None = None,
) -> None:
    """Write the manifest and ``extra_files`` into staging, ``_SUCCESS`` last, then swap it in.

    Parameters
    ----------
    target : OutputTarget
        From :func:`prepare_output`; staging is created if nothing was written to it.
    manifest : mapping
        The run manifest (see :func:`build_run_manifest`); stored as ``_pool3_manifest.json``
        with ``committed_at``, ``output`` and ``parts`` (name and size of each data file:
        :mod:`pool3.storage.integrity`) added.
    extra_files : mapping of str to str or bytes, optional
        File name (no ``/``) -> text or bytes, e.g. ``{"report.html": html}``. Next to data files
        (``part-*``) names must start with ``_`` (``_report.html``): Spark's readers take
        every other file in the directory as data.

    Raises
    ------
    ValueError
        An extra file name that is not a plain name, or is visible next to data files.
    OutputError
        Writing or renaming failed; the previous output, if any, is left (or put back) in
        place; or this run no longer holds the output's lock (another run judged it dead).
        Call :func:`abort_output` to remove staging.
    """
    extra_files = dict(extra_files or {})
    for name in extra_files:
        if not name or "/" in name or name in (SUCCESS_NAME, MANIFEST_NAME, ".", ".."):
            raise ValueError(f"invalid extra file name {name!r}: expected a plain file name")
    document = {**jsonable(manifest), "committed_at": utc_now(), "output": target.final}
    try:
        mkdirs(spark, target.staging)
        _check_readable_layout(list_names(spark, target.staging), extra_files)
        document[PARTS_KEY] = data_files(spark, target.staging)  # read back: check_parts
        delete(spark, join(target.staging, SUCCESS_NAME), recursive=False)
        for name, data in extra_files.items():
            if isinstance(data, str):
                data = data.encode("utf-8")
            write_bytes(spark, join(target.staging, name), data)
        text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
        write_text(spark, join(target.staging, MANIFEST_NAME), text)
        write_text(spark, join(target.staging, SUCCESS_NAME), "")
        if target.lock is not None and not target.lock.held():
            raise OutputError(
                f"this run lost the lock of {target.final} (another run took its heartbeat "
                "for dead; see output.lock_timeout_seconds): nothing is committed; run again"
            )
        _swap(spark, target)
    except FS_ERRORS as err:
        raise OutputError(
            f"cannot commit output {target.final}: {why(err)}; nothing is committed and the "
            "previous output (if any) is unchanged"
        ) from err
    logger.info("committed %s", target.final)
    if target.lock is not None:
        target.lock.release()


def _check_readable_layout(names: list[str], extra_files: Mapping[str, object]) -> None:
    """Refuse visible extra files next to data files: they would break Spark's readers."""
    if not any(n.startswith("part-") for n in names):
        return
    visible = [n for n in extra_files if not n.startswith(("_", "."))]
    if visible:
        raise ValueError(
            f"extra files {visible} would be read as data by Spark readers of the output "
            f"(every file not starting with _ or . is); name them {['_' + n for n in visible]}"
        )


def _swap(spark: SparkSession | None, target: OutputTarget) -> None:
    parent, name = parent_and_name(spark, target.final)
    trash = None
    if exists(spark, target.final):
        token = target.lock.owner.token if target.lock else uuid.uuid4().hex[:16]
        trash = join(parent, owned_name(name, "trash", token))
        rename(spark, target.final, trash)
    try:
        rename(spark, target.staging, target.final)
    except FS_ERRORS:
        if trash is not None:
            rename(spark, trash, target.final)  # put the previous output back
        raise
    if trash is not None:
        try:
            delete(spark, trash)
        except FS_ERRORS as err:  # the next prepare_output removes it
            logger.warning("could not delete %s: %s", trash, why(err))


#: After a failed or cancelled job, Spark kills its running tasks asynchronously: one may
#: still write a file, recreating the staging directory just deleted. It is deleted again
#: until it has stayed absent this long (at most STAGING_SETTLE_MAX_S in all).
STAGING_SETTLE_S = 1.0
STAGING_SETTLE_MAX_S = 15.0


def _delete_until_settled(spark: SparkSession | None, path: str) -> bool:
    removed = delete(spark, path)
    started = quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < STAGING_SETTLE_S:
        if time.monotonic() - started > STAGING_SETTLE_MAX_S:
            logger.warning("staging %s is still being written into; left in place", path)
            break
        time.sleep(0.2)
        if exists(spark, path):
            logger.debug("staging %s came back (a task still being killed); deleting again", path)
            removed = delete(spark, path) or removed
            quiet_since = time.monotonic()
    return removed


def abort_output(spark: SparkSession | None, target: OutputTarget) -> None:
    """Delete the staging directory of a failed run (again, until no task of the failed job
    writes into it any more: ``_delete_until_settled``) and give up the output's lock (best
    effort: failures are logged)."""
    try:
        if _delete_until_settled(spark, target.staging):
            logger.info("removed staging %s", target.staging)
    except FS_ERRORS as err:
        logger.warning("could not remove staging %s: %s", target.staging, err)
    if target.lock is not None:
        target.lock.release()
