"""The prepared rows as one float32 array on the driver, read without a JVM collect.

:func:`collect_split` brings only what a driver solver needs:

1. Spark sends the split it computed (:func:`pool3.training.table.rules.prepare`): ``path,
   label, sha256, is_test`` of the usable rows, strings and a flag, ~200 bytes a row.
2. The driver reads the feature table's own Parquet parts with pyarrow (through
   :mod:`pool3.storage.files`, so HDFS and S3 too), two columns (``path, features``) one
   record batch at a time, and copies each usable row's vector straight into its slot of
   one preallocated float32 ``(n, n_features)`` array: the list column is flattened by
   Arrow, no per-row Python object is made, and nothing passes through the JVM or pandas.

Rows are ordered training rows first, then test rows, each sorted by path (a fit does not
depend on how Spark or the file system ordered them), so ``X_train`` and ``X_test`` are
views of one array. Driver memory: the array, the keys, and one record batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pool3.errors import DataError, InputError
from pool3.storage.files import resolve
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)

#: Rows per record batch read from a Parquet part: 2048 x 4 bytes x this ~ 16 MB.
READ_BATCH_ROWS = 2048
#: Driver bytes per row besides its features: path and label strings, index, flags.
KEY_BYTES = 200


@dataclass(frozen=True, eq=False)
class Split:
    """Train/test arrays of a :class:`~pool3.training.table.rules.TrainingTable`.

    Attributes
    ----------
    X : ndarray of shape (n_train + n_test, n_features), float32, C-contiguous
        Training rows first. ``X_train``/``X_test`` are views of it.
    y, paths : ndarray of shape (n_train + n_test,), str
    n_train : int
    sha256 : ndarray of shape (n_train + n_test,), object (str or None)
    """

    X: np.ndarray
    y: np.ndarray
    paths: np.ndarray
    n_train: int
    sha256: np.ndarray | None = None

    @property
    def is_test(self) -> np.ndarray:
        return np.arange(len(self.y)) >= self.n_train

    @property
    def X_train(self) -> np.ndarray:
        return self.X[: self.n_train]

    @property
    def X_test(self) -> np.ndarray:
        return self.X[self.n_train :]

    @property
    def y_train(self) -> np.ndarray:
        return self.y[: self.n_train]

    @property
    def y_test(self) -> np.ndarray:
        return self.y[self.n_train :]

    @property
    def paths_train(self) -> np.ndarray:
        return self.paths[: self.n_train]

    @property
    def paths_test(self) -> np.ndarray:
        return self.paths[self.n_train :]


def driver_mb(n_rows: int, n_features: int) -> float:
    """Driver memory of :func:`collect_split` for ``n_rows`` usable rows, in MiB."""
    return n_rows * (4 * n_features + KEY_BYTES) / 2**20


#: columns a Parquet part must hold for the driver to read its features directly
PART_COLUMNS = ("path", "features", "label", "error")


def part_files(data: TrainingTable) -> list[str]:
    """The Parquet files Spark reads for ``data``'s source table, as pyarrow can open them;
    ``[]`` when the table is not a scan of feature-table Parquet (built in memory, derived
    from images by :func:`pool3.api.featurize`, or its files lack :data:`PART_COLUMNS`).

    ``DataFrame.inputFiles()`` gives Hadoop URIs, percent-encoded (``%20`` for a space):
    decoded here, exactly the inverse of Hadoop's encoding.
    """
    files = [] if data.source is None else sorted(unquote(f) for f in data.source.inputFiles())
    if not files or not all(f.endswith(".parquet") for f in files):
        return []
    root = resolve(files[0])
    try:
        with root.filesystem().open_input_file(root.fs_path) as handle:
            names = set(pq.ParquetFile(handle).schema_arrow.names)
    except (OSError, pa.ArrowInvalid):
        return files  # reported with the fix by _fill
    return files if names.issuperset(PART_COLUMNS) else []


def collect_through_spark(data: TrainingTable, n_features: int) -> Split:
    """The usable rows of a table that is not a Parquet scan, collected as Arrow through
    Spark (the driver's JVM, or the Connect server, holds them once on the way): fine for
    the tables of a notebook; tables of 50k rows and more train faster, and in less driver
    memory, from Parquet (:func:`collect_split` reads those parts directly)."""
    started = time.perf_counter()
    table = data.frame.select("path", "label", "sha256", "is_test", "features").toArrow()
    keys = pd.DataFrame(
        {
            "path": table.column("path").to_numpy(zero_copy_only=False),
            "label": table.column("label").to_numpy(zero_copy_only=False),
            "sha256": table.column("sha256").to_numpy(zero_copy_only=False),
            "is_test": table.column("is_test").to_numpy(zero_copy_only=False),
        }
    )
    order = keys.sort_values(["is_test", "path"], kind="stable").index.to_numpy()
    keys = _unique(keys.iloc[order].reset_index(drop=True))
    flat = pc.list_flatten(table.column("features")).to_numpy(zero_copy_only=False)
    X = flat.astype(np.float32, copy=False).reshape(len(order), n_features)[order]
    del table, flat
    pa.default_memory_pool().release_unused()
    log.info(
        "collected %d feature rows (%.0f MB float32) through Spark in %.1f s (the table is "
        "not a scan of feature-table Parquet)",
        len(keys),
        X.nbytes / 2**20,
        time.perf_counter() - started,
    )
    return _split(keys, X)


def _keys(data: TrainingTable) -> pd.DataFrame:
    keys: pd.DataFrame = data.frame.select("path", "label", "sha256", "is_test").toPandas()
    return _unique(keys.sort_values(["is_test", "path"], kind="stable", ignore_index=True))


def _unique(keys: pd.DataFrame) -> pd.DataFrame:
    repeated = keys["path"][keys["path"].duplicated()]
    if len(repeated):
        shown = ", ".join(repr(p) for p in repeated.unique()[:3])
        raise DataError(
            f"{repeated.nunique()} paths appear in more than one usable row of the feature "
            f"table (e.g. {shown}); a feature table has one row per image: re-featurize "
            "into a fresh output (or with --mode overwrite) and train again"
        )
    return keys


def _fill(X: np.ndarray, found: np.ndarray, index: pd.Index, path: str, n_features: int) -> None:
    """Copy the usable rows of the Parquet file at ``path`` into their rows of ``X``."""
    root = resolve(path)
    try:
        with root.filesystem().open_input_file(root.fs_path) as handle:
            parquet = pq.ParquetFile(handle)
            for batch in parquet.iter_batches(
                batch_size=READ_BATCH_ROWS, columns=["path", "features", "label", "error"]
            ):
                where = index.get_indexer(batch.column("path").to_numpy(zero_copy_only=False))
                # the usable rule of pool3.training.table.rules: no error, a non-blank label
                label = batch.column("label")
                usable = pc.and_(
                    pc.is_null(batch.column("error")),
                    pc.fill_null(pc.invert(pc.match_substring_regex(label, r"^\s*$")), False),
                )
                keep = (where >= 0) & usable.to_numpy(zero_copy_only=False)
                if not keep.any():
                    continue
                feats = batch.column("features")
                if not keep.all():  # (a copy of the kept rows only when some are not)
                    feats = feats.filter(pa.array(keep))
                flat = pc.list_flatten(feats).to_numpy(zero_copy_only=False)
                rows = where[keep]
                if flat.size != len(rows) * n_features:
                    raise DataError(
                        f"{path}: usable rows hold {flat.size} feature values for {len(rows)} "
                        f"rows, expected {n_features} each; the table changed while training "
                        "read it: rerun pool3 train"
                    )
                if found[rows].any():
                    again = index[rows[found[rows]][0]]
                    raise DataError(
                        f"{again!r} has more than one usable row in the feature table's "
                        "Parquet parts; a feature table has one row per image: re-featurize "
                        "into a fresh output (or with --mode overwrite) and train again"
                    )
                X[rows] = flat.reshape(len(rows), n_features)
                found[rows] = True
                del batch, feats, flat
                pa.default_memory_pool().release_unused()  # Arrow's pool keeps freed pages
    except (OSError, pa.ArrowInvalid) as err:
        raise InputError(
            f"cannot read the feature table part {path} ({err}); check that the table is "
            "readable from the driver (for HDFS: JAVA_HOME, HADOOP_HOME, CLASSPATH; for S3: "
            "credentials) and rerun"
        ) from err


def collect_split(data: TrainingTable, n_features: int) -> Split:
    """The usable rows of ``data`` as one float32 array (training rows first) on the driver.

    Raises
    ------
    DataError
        A path in several usable rows, or a usable row missing from the Parquet parts
        (the table changed since :func:`~pool3.training.table.rules.prepare` counted it).
    InputError
        A part that cannot be read from the driver.
    """
    files = part_files(data)
    if not files:
        return collect_through_spark(data, n_features)
    started = time.perf_counter()
    keys = _keys(data)
    n = len(keys)
    index = pd.Index(keys["path"].to_numpy())
    X = np.empty((n, n_features), dtype=np.float32)
    found = np.zeros(n, dtype=bool)
    for path in files:
        _fill(X, found, index, path, n_features)
        pa.default_memory_pool().release_unused()  # and what the file's reader held
    if not found.all():
        missing = keys["path"][~found]
        raise DataError(
            f"{len(missing)} usable rows were not found in the feature table's Parquet parts "
            f"(e.g. {missing.iloc[0]!r}): the table changed while training read it; rerun "
            "pool3 train"
        )
    log.info(
        "read %d feature rows (%.0f MB float32) from %d Parquet parts in %.1f s",
        n,
        X.nbytes / 2**20,
        len(files),
        time.perf_counter() - started,
    )
    return _split(keys, X)


def _split(keys: pd.DataFrame, X: np.ndarray) -> Split:
    test = keys["is_test"].to_numpy(dtype=bool)
    return Split(
        X=X,
        y=np.asarray(keys["label"].astype(str), dtype=np.str_),
        paths=np.asarray(keys["path"].astype(str), dtype=np.str_),
        n_train=int((~test).sum()),
        sha256=keys["sha256"].to_numpy(dtype=object),
    )
