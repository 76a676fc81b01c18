"""What a Parquet folder holds, read on the driver through pyarrow: no Spark job.

After a write, a run checks and reports what it wrote: the row count (from the files'
footers), the distinct paths, the rows without a label and the errors by reason (from those
columns only; the 2048 features are never read). A Spark job for the same answers costs a
few seconds of planning and scheduling per run (two jobs, ~2 s on a 2-core machine), which
for a small daily increment was more than the work itself; this reads the same files, so the
answers are the same.

The data files of a folder are Spark's: every file below it whose path, relative to the
folder, has no component starting with ``_`` or ``.`` (Hadoop's hidden files:
``_SUCCESS``, ``_pool3_*``, ``.part-*.crc``, ``_temporary/``).

May import: :mod:`pool3.storage` and pyarrow.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pool3.storage.files import resolve


@dataclass
class TableCounts:
    """Counts of a feature or prediction table (see :func:`table_counts`)."""

    rows: int = 0
    paths: int = 0
    unlabelled: int | None = None  # None: the table has no ``label`` column
    errors_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(self.errors_by_reason.values())


def data_files(uri: str) -> tuple[pafs.FileSystem, list[str]]:
    """The file system and the Parquet data files of the folder ``uri``, sorted."""
    root = resolve(uri)
    fs = root.filesystem()
    base = root.fs_path.rstrip("/") + "/"
    infos = fs.get_file_info(pafs.FileSelector(root.fs_path, recursive=True))
    files = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.startswith(base):
            continue
        parts = info.path[len(base) :].split("/")
        if any(p.startswith(("_", ".")) for p in parts):
            continue
        files.append(info.path)
    return fs, sorted(files)


def row_count(uri: str) -> int:
    """Rows of the Parquet folder ``uri``, from its files' footers."""
    fs, files = data_files(uri)
    total = 0
    for path in files:
        with fs.open_input_file(path) as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def reason_of(error: str) -> str:
    """The category of an error string ``"<category>: <detail>"``: the text before the first
    colon (the whole string without one), as Spark's ``substring_index(error, ':', 1)``."""
    return error.partition(":")[0]


def table_counts(uri: str) -> TableCounts:
    """Rows, distinct ``path``\\ s, rows with a null ``label`` (if that column exists) and the
    ``error`` values by reason (:func:`reason_of`) of the Parquet folder ``uri``.

    Reads the footers and the ``path``, ``label`` and ``error`` columns of each file, one
    file at a time; the paths of all files are held together for the distinct count (the
    size of the run's listing, which the driver holds anyway).
    """
    fs, files = data_files(uri)
    counts = TableCounts()
    paths: list[pa.ChunkedArray] = []
    reasons: Counter[str] = Counter()
    for path in files:
        with fs.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            names = set(parquet.schema_arrow.names)
            columns = [c for c in ("path", "label", "error") if c in names]
            table = parquet.read(columns=columns)
        counts.rows += parquet.metadata.num_rows
        if "path" in names:
            paths.append(table["path"])
        if "label" in names:
            counts.unlabelled = (counts.unlabelled or 0) + table["label"].null_count
        if "error" in names:
            errors = pc.drop_null(table["error"])
            for value, n in Counter(errors.to_pylist()).items():
                reasons[reason_of(value)] += n
    chunks = [chunk for array in paths for chunk in array.chunks]
    if chunks:
        counts.paths = pc.count_distinct(pa.chunked_array(chunks)).as_py()
    counts.errors_by_reason = dict(sorted(reasons.items()))
    return counts
