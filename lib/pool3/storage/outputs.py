"""Inputs and outputs of a run: checks, and an all-or-nothing output commit.

Every output is written to a hidden staging sibling, then moved into place::

    target = prepare_output(spark, "hdfs://nn/features", mode="error", run_id="2026-05-09")
    try:
        df.write.parquet(target.staging)
        commit_output(spark, target, manifest=manifest, extra_files={"report.html": html})
    except BaseException:
        abort_output(spark, target)
        raise

:func:`check_input` and :func:`prepare_output` live here; the commit protocol
(:func:`commit_output`, :func:`abort_output`, :func:`is_complete`) in :mod:`pool3.storage.commit`,
re-exported here. ``commit_output`` writes ``_pool3_manifest.json`` and the extra files,
then ``_SUCCESS`` *last*, then swaps staging into place: an existing output is renamed to a
hidden trash sibling, staging is renamed to the final path, the trash is deleted. Staging and
trash names start with ``.`` so Spark and Hive readers of the parent skip them. On HDFS and
local disks a rename is atomic; on object stores (s3a) it is a copy and a delete, so readers
there must check for ``_SUCCESS`` (:func:`is_complete`) and never trust a directory without it.
"""

from __future__ import annotations

import logging
import re

from pyspark.sql import DataFrame, SparkSession

from pool3.config import OutputConfig, choices_of
from pool3.errors import ConfigError, InputError, OutputError, damaged_input
from pool3.storage.commit import (
    MANIFEST_NAME,
    SUCCESS_NAME,
    OutputTarget,
    abort_output,
    commit_output,
    is_complete,
)
from pool3.storage.fs import (
    FS_ERRORS,
    delete,
    exists,
    is_dir,
    join,
    list_files,
    list_names,
    literal,
    mkdirs,
    parent_and_name,
    qualify,
    read_json,
    read_text,
    rename,
    why,
    write_text,
)
from pool3.storage.integrity import check_parts
from pool3.storage.lock import OutputBusy, OutputLock, Owner, owned_name, token_of
from pool3.storage.manifest import build_run_manifest

__all__ = [
    "MANIFEST_NAME",
    "MODES",
    "SUCCESS_NAME",
    "OutputBusy",
    "OutputTarget",
    "abort_output",
    "build_run_manifest",
    "check_input",
    "commit_output",
    "exists",
    "is_complete",
    "list_files",
    "prepare_output",
    "read_committed",
    "read_json",
    "read_text",
    "release_output",
    "write_text",
]

logger = logging.getLogger(__name__)

MODES = choices_of(OutputConfig, "mode")
_RUN_ID = re.compile(r"[A-Za-z0-9_.=-]{1,128}")
# What a failed Spark/pool3 write leaves: part files, _temporary, .crc, partition dirs.
_OURS = re.compile(r"[._].*|part-.*|[^=/]+=[^/]*")


def check_input(spark: SparkSession | None, path: str) -> None:
    """Fail early with :class:`InputError` if ``path`` (literal, not a glob) is missing or
    cannot be read."""
    hint = (
        "check the path; on a cluster a local path must exist on every node "
        "(use hdfs://, s3a:// or a shared mount)"
    )
    try:  # the path is literal (pyarrow.fs has no globs)
        found = exists(spark, path)
    except FS_ERRORS as err:
        raise InputError(f"cannot read input {path!r}: {why(err)}; {hint}") from err
    if not found:
        raise InputError(f"input {path!r} does not exist; {hint}")


def read_committed(spark: SparkSession, path: str, *, made_by: str) -> DataFrame:
    """The Parquet table at ``path``, only if it is a committed output that is all there.

    Refuses (InputError) a folder without ``_SUCCESS`` (a run still writing, or one that
    failed) and one whose parts differ from those its ``_pool3_manifest.json`` records
    (missing, added or of another size: :func:`pool3.storage.integrity.check_parts`), before
    Spark opens them; for a table committed before parts were recorded, one whose row count
    differs from the manifest's. The path is literal, not a glob.
    ``made_by`` names the command that writes such tables, for the fix in the message.
    """
    check_input(spark, path)
    if not is_complete(spark, path):
        raise InputError(
            f"{path!r} has no {SUCCESS_NAME}: it is not a committed output (a run still "
            f"writing, or one that failed or was killed); wait for it, or rerun {made_by} "
            "and point at its committed output"
        )
    manifest_path = join(path, MANIFEST_NAME)
    manifest = read_json(spark, manifest_path) if exists(spark, manifest_path) else {}
    fix = f"rerun {made_by} into a new output (or onto it with --mode overwrite)"
    # absolute here: a Spark Connect server would resolve a relative path against its own cwd
    where = literal(qualify(spark, path))
    with damaged_input(f"reading {path}"):
        if check_parts(spark, path, manifest, fix=fix):
            return spark.read.parquet(where)
        table = spark.read.parquet(where)
        recorded = manifest.get("counts", {}).get("images")
        rows = table.count() if isinstance(recorded, int) else recorded
    if rows != recorded:  # a table committed before parts were recorded
        raise InputError(
            f"{path!r} holds {rows} rows but its {MANIFEST_NAME} records {recorded}: "
            f"part files were deleted or added after the commit; {fix}"
        )
    return table


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise ConfigError(
            f"invalid run id {run_id!r}: expected 1-128 letters, digits or - _ . = "
            "(e.g. 2026-05-09 or nightly_42); change --run-id"
        )
    return run_id


def prepare_output(
    spark: SparkSession | None,
    path: str,
    *,
    mode: str,
    run_id: str | None = None,
    command: str = "run",
    lock_timeout_s: float = 600.0,
) -> OutputTarget:
    """Take ownership of an output and decide where the run writes, after checking that it may.

    Parameters
    ----------
    spark : SparkSession or None
        Its Hadoop FileSystem is used; without a JVM (Spark Connect, None), pyarrow.fs.
    path : str
        Output directory (local, file://, hdfs://, s3a://).
    mode : {"error", "overwrite", "incremental"}
        ``error``: refuse a complete output at the final path. ``overwrite``: replace it on
        commit. ``incremental``: keep it readable; the caller merges it into the new output.
    run_id : str, optional
        Write to ``path/run_id=<run_id>``; re-running the same id replaces that run's
        output only (as ``overwrite``); other run ids are never touched.
    command : str
        Recorded in the lock, so a second run can say who holds the output.
    lock_timeout_s : float
        ``output.lock_timeout_seconds``: see :mod:`pool3.storage.lock`.

    Returns
    -------
    OutputTarget
        Holding the output's lock (release it with :func:`release_output`); ``staging`` is
        a hidden sibling ``.<name>.pool3-staging-<token>``, not created (Spark's writers
        create it). Nothing is replaced before commit.

    Raises
    ------
    OutputBusy
        Another live run holds the output's lock.
    OutputError
        Complete output exists (mode ``error``, no run id); an incomplete one holds files
        pool3 did not write; the path is a file; or its parent is not writable.
    ConfigError
        Unknown ``mode`` or malformed ``run_id``.
    """
    if mode not in MODES:
        raise ConfigError(f"invalid output mode {mode!r}: expected one of {list(MODES)}")
    target_path = path if run_id is None else join(path, f"run_id={check_run_id(run_id)}")
    try:
        final = qualify(spark, target_path)
        parent, name = parent_and_name(spark, final)
    except (*FS_ERRORS, ValueError) as err:
        raise OutputError(f"output path {target_path!r} is not usable: {why(err)}") from err
    lock = OutputLock(spark, parent, name, Owner.me(command, run_id), timeout_s=lock_timeout_s)
    try:
        mkdirs(spark, parent)
        lock.acquire()
    except FS_ERRORS as err:
        raise OutputError(
            f"cannot write to {parent}: {why(err)}; check that it is a directory you may write to, "
            "or choose another output path"
        ) from err
    try:
        _remove_leftovers(spark, parent, name, final, lock.owner.token)
        existing = _existing(spark, final, mode=mode, run_id=run_id)
    except FS_ERRORS as err:
        lock.release()
        raise OutputError(f"output path {target_path!r} is not usable: {why(err)}") from err
    except BaseException:
        lock.release()
        raise
    staging = join(parent, owned_name(name, "staging", lock.owner.token))
    logger.info("output %s (mode %s, existing: %s), staging %s", final, mode, existing, staging)
    return OutputTarget(
        final=final, staging=staging, mode=mode, run_id=run_id, existing=existing, lock=lock
    )


def release_output(target: OutputTarget) -> None:
    """Give up the output's lock (after commit or abort)."""
    if target.lock is not None:
        target.lock.release()


def _existing(spark: SparkSession | None, final: str, *, mode: str, run_id: str | None) -> str:
    """``none``/``complete``/``incomplete``, raising where the mode forbids going on."""
    if not exists(spark, final):
        return "none"
    if not is_dir(spark, final):
        raise OutputError(
            f"output {final} exists and is a file, not a directory; choose another output path"
        )
    if is_complete(spark, final):
        if mode == "error" and run_id is None:
            raise OutputError(
                f"output {final} exists; use --mode overwrite to replace it, or another --run-id"
            )
        if mode != "incremental":
            why = "--mode overwrite" if mode == "overwrite" else f"re-run of run_id={run_id}"
            logger.warning("output %s exists and will be replaced on commit (%s)", final, why)
        return "complete"
    if mode != "overwrite":
        names = list_names(spark, final)
        foreign = [n for n in names if not _OURS.fullmatch(n)]
        if run_id is None:
            foreign += [n for n in names if n.startswith("run_id=")]
        if foreign:
            raise OutputError(
                f"output {final} exists without {SUCCESS_NAME} and holds entries pool3 would "
                f"not have written ({', '.join(foreign[:5])}); it is left alone: remove it, use "
                "--mode overwrite, or choose another output path (or pass --run-id)"
            )
    logger.warning(
        "output %s exists without %s (an earlier run failed?); it will be replaced on commit",
        final,
        SUCCESS_NAME,
    )
    return "incomplete"


def _remove_leftovers(
    spark: SparkSession | None, parent: str, name: str, final: str, token: str
) -> None:
    """Clean up after runs of this output that are gone (this run holds the lock, so every
    other owner's staging, trash and heartbeat is a dead run's). A run killed in the middle
    of its swap leaves the previous output in its trash and none at ``final``: that trash is
    put back first."""
    entries = [e for e in list_names(spark, parent) if token_of(name, e) not in (None, token)]
    trash = [e for e in entries if e.startswith(owned_name(name, "trash", ""))]
    if trash and not exists(spark, final):
        for entry in trash:
            if is_complete(spark, join(parent, entry)):
                logger.warning("putting back %s, moved aside by a run killed mid-commit", final)
                rename(spark, join(parent, entry), final)
                entries.remove(entry)
                break
    for entry in entries:
        logger.warning("removing %s, left by a run that is gone", join(parent, entry))
        delete(spark, join(parent, entry))
