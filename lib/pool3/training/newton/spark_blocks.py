"""The float32 blocks the ``spark`` solver caches, and how rows travel between tasks and driver.

A cached row is a block of ``BLOCK_ROWS`` training (or test) rows as binary values: ``id``
(int64, a hash of the path), ``sha`` (int64, of the content), ``y`` and ``fold`` (int32) and
``x`` (float32 features): a pass moves a few large values from the JVM to Python, never
2048 list elements per row, and views a whole Arrow batch of blocks as one array without a
copy (:func:`rows_of`). Rows a task ships to the driver go back with its result (through
the JVMs), or, given a scratch folder both reach, into an Arrow file there
(:class:`Outbox`, :func:`read_file`).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pool3.storage.files import resolve
from pool3.storage.fs import join as fs_join
from pool3.training.newton.passes import Sums

#: training rows per cached block: one binary value of 2048 x 4 x 48 bytes (384 KB), below
#: the JVM's humongous-object size (half a G1 region, 512 KB at heaps up to 2 GB), which
#: made each 4 MB block an expensive allocation on every pass; a pass views a whole Arrow
#: batch of blocks as one array (:func:`rows_of`), so small blocks cost Python nothing
BLOCK_ROWS = 48


#: shipped rows per output row of a pass (8 MB)
SHIP_ROWS = 1024


BLOCK_SCHEMA = "test boolean, id binary, sha binary, y binary, fold binary, x binary"


OUT_SCHEMA = "part binary, id binary, y binary, fold binary, x binary, missed long, file string"


OUT = pa.schema(
    [
        ("part", pa.binary()),
        ("id", pa.binary()),
        ("y", pa.binary()),
        ("fold", pa.binary()),
        ("x", pa.binary()),
        ("missed", pa.int64()),
        ("file", pa.string()),
    ]
)


def pack_sums(sums: Sums, **extra: np.ndarray) -> bytes:
    buf = io.BytesIO()
    fields: dict[str, Any] = {k: v for k, v in vars(sums).items() if v is not None}
    fields.update(extra)
    np.savez(buf, **fields)
    return buf.getvalue()


def unpack_sums(raw: bytes) -> tuple[Sums, dict[str, np.ndarray]]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        found = {k: npz[k] for k in npz.files}
    names = set(vars(Sums()))
    return Sums(**{k: v for k, v in found.items() if k in names}), {
        k: v for k, v in found.items() if k not in names
    }


def packer(n_features: int) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Rows to cached blocks of ``BLOCK_ROWS`` rows, training and test rows apart."""
    schema = pa.schema(
        [("test", pa.bool_()), ("id", pa.binary()), ("sha", pa.binary()), ("y", pa.binary()),
         ("fold", pa.binary()), ("x", pa.binary())]
    )  # fmt: skip

    def pack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            flat = pc.list_flatten(batch.column("features")).to_numpy(zero_copy_only=False)
            X = np.ascontiguousarray(flat, dtype=np.float32).reshape(-1, n_features)
            ids = batch.column("id").to_numpy(zero_copy_only=False).astype(np.int64)
            sha = batch.column("sha").to_numpy(zero_copy_only=False).astype(np.int64)
            y = batch.column("y").to_numpy(zero_copy_only=False).astype(np.int32)
            fold = batch.column("fold").to_numpy(zero_copy_only=False).astype(np.int32)
            test = batch.column("is_test").to_numpy(zero_copy_only=False).astype(bool)
            for flag in (False, True):
                rows = np.flatnonzero(test == flag)
                for start in range(0, len(rows), BLOCK_ROWS):
                    r = rows[start : start + BLOCK_ROWS]
                    yield pa.RecordBatch.from_pydict(
                        {
                            "test": [flag],
                            "id": [ids[r].tobytes()],
                            "sha": [sha[r].tobytes()],
                            "y": [y[r].tobytes()],
                            "fold": [fold[r].tobytes()],
                            "x": [X[r].tobytes()],
                        },
                        schema,
                    )

    return pack


class Rows(NamedTuple):
    """Rows of cached blocks as arrays: ``X`` (m, d) float32, ``y``, ``fold`` (int32),
    ``ids``, ``sha`` (int64)."""

    X: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    ids: np.ndarray
    sha: np.ndarray


def _values(column: pa.Array, dtype: type) -> np.ndarray:
    """All values of a binary column as one array over its data buffer (no copy): the
    blocks of a batch lie end to end there."""
    _, offsets_buffer, data = column.buffers()
    wide = np.dtype(np.int64 if pa.types.is_large_binary(column.type) else np.int32)
    offsets = np.frombuffer(
        offsets_buffer, dtype=wide, count=len(column) + 1, offset=column.offset * wide.itemsize
    )
    first, last = int(offsets[0]), int(offsets[-1])
    item = np.dtype(dtype).itemsize
    return np.frombuffer(data, dtype=dtype, count=(last - first) // item, offset=first)


def rows_of(batch: pa.RecordBatch, n_features: int) -> Rows:
    """Every row of a batch of cached blocks at once, as arrays over its buffers."""
    return Rows(
        _values(batch.column("x"), np.float32).reshape(-1, n_features),
        _values(batch.column("y"), np.int32),
        _values(batch.column("fold"), np.int32),
        _values(batch.column("id"), np.int64),
        _values(batch.column("sha"), np.int64),
    )


def each_block(
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, bytes] | None],
    n_features: int,
    schema: pa.Schema,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function: ``fn(X, ids, sha)`` per batch of cached blocks, one output row
    each (the near-duplicate search's jobs, :mod:`pool3.duplicates.blocks`)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not batch.num_rows:
                continue
            rows = rows_of(batch, n_features)
            out = fn(rows.X, rows.ids, rows.sha)
            if out is not None:
                yield pa.RecordBatch.from_pydict({k: [v] for k, v in out.items()}, schema)

    return run


def ship_row(ids: np.ndarray, X: np.ndarray, y: np.ndarray, fold: np.ndarray) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"part": [None], "id": [ids.tobytes()], "y": [y.tobytes()], "fold": [fold.tobytes()],
         "x": [X.tobytes()], "missed": [0], "file": [None]},
        OUT,
    )  # fmt: skip


class Outbox:
    """Where a task's shipped rows go: back with its result (through the JVMs), or, with a
    ``scratch`` folder, into one Arrow file there that the driver reads (no JVM heap, no
    result-size limit)."""

    def __init__(self, scratch: str | None, schema: pa.Schema = OUT) -> None:
        self.scratch, self.schema = scratch, schema
        self.path: str | None = None
        self.stream: Any = None
        self.writer: Any = None

    def send(self, rows: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        if self.scratch is None:
            yield rows
            return
        if self.writer is None:
            root = resolve(fs_join(self.scratch, f"{uuid.uuid4().hex}.arrow"))
            self.path = root.uri
            self.stream = root.filesystem().open_output_stream(root.fs_path)
            self.writer = pa.ipc.new_stream(self.stream, self.schema)
        self.writer.write_batch(rows)

    def close(self) -> str | None:
        if self.writer is not None:
            self.writer.close()
            self.stream.close()
        return self.path


def read_file(uri: str) -> pa.Table:
    """An Arrow stream a task wrote to the scratch folder, deleted once read."""
    root = resolve(uri)
    fs = root.filesystem()
    with fs.open_input_stream(root.fs_path) as stream:
        table = pa.ipc.open_stream(stream).read_all()
    fs.delete_file(root.fs_path)
    return table


#: Spark DDL of the Arrow types :meth:`SparkPasses.collect` returns
DDL = {pa.binary(): "binary", pa.string(): "string", pa.int64(): "long"}


def pass_job(
    kernel: Callable[..., tuple[Sums, np.ndarray]],
    n_features: int,
    held_ids: np.ndarray,
    quota: int,
    folds: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    with_ids: bool = False,
    scratch: str | None = None,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """What one pass runs on a partition: the kernel's sums over its blocks, the needed rows
    not in ``held_ids`` (sorted) shipped up to ``quota`` (to ``scratch`` where given), and
    with ``with_ids`` every id it saw (8 bytes a row, for the driver's check that no path
    repeats)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        total = Sums()
        left, missed, seen = quota, 0, []
        outbox = Outbox(scratch)
        for batch in batches:
            if batch.num_rows:
                X, y, fold, ids, _ = rows_of(batch, n_features)
                sums, needed = kernel(X, y, fold if folds else None, *args, **kwargs)
                total.add(sums)
                seen.append(ids)
                pos = np.flatnonzero(needed)
                if len(held_ids) and len(pos):
                    at = np.searchsorted(held_ids, ids[pos]).clip(0, len(held_ids) - 1)
                    pos = pos[held_ids[at] != ids[pos]]
                sent = pos[: max(left, 0)]
                missed += len(pos) - len(sent)
                left -= len(sent)
                for start in range(0, len(sent), SHIP_ROWS):
                    part = sent[start : start + SHIP_ROWS]
                    yield from outbox.send(ship_row(ids[part], X[part], y[part], fold[part]))
        every = np.concatenate(seen) if with_ids and seen else np.zeros(0, np.int64)
        yield pa.RecordBatch.from_pydict(
            {"part": [pack_sums(total, ids=every)], "id": [None], "y": [None],
             "fold": [None], "x": [None], "missed": [missed], "file": [outbox.close()]},
            OUT,
        )  # fmt: skip

    return run
