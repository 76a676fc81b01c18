"""What runs inside a Spark Python worker: bytes in, one feature row per file out.

Plain pandas/numpy over an iterator of frames, so it is testable without Spark; the Spark
layer (:mod:`pool3.extraction.step`) only moves bytes in and arrays out. Memory is bounded by the
model batch, not by the Arrow batch: images are decoded, resized and run ``batch_size`` at a
time. Each file's bytes are read here, a model batch at a time, through
:mod:`pool3.storage.files` (frames carry ``path, length``; a frame with a ``content`` column
is used as is). A file that cannot be read or decoded becomes a row with ``error`` set;
nothing is dropped.

Prefetch (``WorkerOptions.prefetch``, on by default; :mod:`.prefetch`): one thread reads,
hashes, decodes and resizes the *next* model batch while the model runs the current one
(Pillow, hashlib and the runtimes release the GIL), at most one batch ahead across frames:
a worker holds at most two prepared batches (~1.07 MB per image each), so the model's
activations stay the dominant term of ``featurize.worker_memory_mb``. Same output as without.

Size (over ~300 lines): the worker's whole per-batch path (read, hash, decode, resize,
infer, assemble) stays in one module so that its memory bound can be checked in one place.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from pool3.extraction.batching import auto_batch_size, has_amx, output_rows, split_frames
from pool3.extraction.prefetch import Prefetch
from pool3.images.decode import ImageDecodeError, decode
from pool3.images.labels import labels_for_paths
from pool3.model.featurizer import Featurizer, resize_299
from pool3.storage.files import Root, read_file, too_large_error
from pool3.storage.schemas import FEATURE_COLUMNS

log = logging.getLogger(__name__)

MB = 1 << 20
PREFETCH_THREAD = "pool3-prefetch"  #: the name of the prefetch thread


@dataclass(frozen=True)
class WorkerOptions:
    """Everything a worker needs besides the model; small and picklable."""

    fingerprint: str
    runtime: str = "tensorflow"  # recorded with every row, as is precision
    precision: str = "float32"  # float32, bfloat16 or int8-<calibration id>
    batch_size: int = 0  # 0: auto_batch_size() in the worker, which knows if it has a GPU
    worker_memory_mb: int = 2048
    max_pixels: int = 50_000_000
    max_file_bytes: int = 64 * MB
    apply_exif_orientation: bool = False
    label_mode: str = "filename"
    #: where the frames' paths live; None when frames carry the bytes (``content``)
    root: Root | None = None
    manifest: dict[str, str] | None = field(default=None, repr=False)
    #: called in the worker after each frame of rows is sent: tests' hook (:mod:`.hook`)
    after_batch: Callable[[], None] | None = field(default=None, repr=False)
    #: prepare the next model batch in a thread during inference (False: one after the other)
    prefetch: bool = True


@dataclass
class BatchStats:
    """Per-frame timings and counts, for the caller (:class:`pool3.extraction.step.Telemetry`)."""

    images: int = 0
    errors: int = 0
    #: reading, hashing, decoding and resizing the frame's files (in the prefetch thread)
    decode_s: float = 0.0
    #: running the model
    infer_s: float = 0.0
    #: inference waiting for a prepared batch (0.0 without prefetch)
    wait_s: float = 0.0


def read_bytes(frame: pd.DataFrame, i: int, opts: WorkerOptions) -> tuple[bytes | None, str | None]:
    """(bytes, None) or (None, error) for row ``i`` of a files frame."""
    length = int(frame["length"].iat[i])
    if "listing_error" in frame.columns and frame["listing_error"].iat[i] is not None:
        return None, str(frame["listing_error"].iat[i])
    if "content" in frame.columns:
        content = frame["content"].iat[i]
        if content is None:  # left out by the caller for its size
            return None, too_large_error(length, opts.max_file_bytes)
        return bytes(content), None
    if opts.root is None:
        raise ValueError("a files frame without content needs WorkerOptions.root")
    return read_file(opts.root, frame["path"].iat[i], length, max_bytes=opts.max_file_bytes)


def _decode_one(content: bytes, opts: WorkerOptions) -> tuple[Any, str | None]:
    """(DecodedImage or None, error string or None) for one file's bytes."""
    try:
        return decode(
            content,
            max_pixels=opts.max_pixels,
            apply_exif_orientation=opts.apply_exif_orientation,
        ), None
    except ImageDecodeError as err:
        return None, f"{err.category}: {err.detail}"
    except Exception as err:  # one odd file must not kill the job: record it, go on
        log.warning("unexpected decode failure: %r", err)
        return None, f"corrupt: unexpected decoder failure {type(err).__name__}: {err}"


@dataclass
class _Prepared:
    """Rows ``start:stop`` of a frame, read, hashed, decoded and resized: one model batch."""

    frame: pd.DataFrame
    start: int
    stop: int
    last: bool  # the frame's last batch (an empty frame has one, without rows)
    sha: list[str | None]  # these four: one entry per row start..stop-1
    width: list[int | None]
    height: list[int | None]
    errors: list[str | None]
    ok_rows: list[int]  # the frame's rows that have pixels, in order
    pixels: np.ndarray | None  # (len(ok_rows), 299, 299, 3) float32; None without any
    decode_s: float
    wait_s: float = 0.0


def _prepare(
    frame: pd.DataFrame,
    start: int,
    stop: int,
    opts: WorkerOptions,
    cancel: threading.Event | None = None,
) -> _Prepared | None:
    """One model batch of ``frame``; None when ``cancel`` was set (checked between files)."""
    t0 = time.perf_counter()
    k = stop - start
    sha: list[str | None] = [None] * k
    width: list[int | None] = [None] * k
    height: list[int | None] = [None] * k
    errors: list[str | None] = [None] * k
    ok_rows, pixels = [], []
    for j, i in enumerate(range(start, stop)):
        if cancel is not None and cancel.is_set():
            return None
        data, errors[j] = read_bytes(frame, i, opts)
        if data is None:
            continue
        sha[j] = hashlib.sha256(data).hexdigest()
        image, errors[j] = _decode_one(data, opts)
        del data
        if image is not None:
            width[j], height[j] = image.width, image.height
            ok_rows.append(i)
            pixels.append(resize_299(image.pixels))
    stacked = np.stack(pixels) if pixels else None
    del pixels
    return _Prepared(
        frame=frame,
        start=start,
        stop=stop,
        last=stop == len(frame),
        sha=sha,
        width=width,
        height=height,
        errors=errors,
        ok_rows=ok_rows,
        pixels=stacked,
        decode_s=time.perf_counter() - t0,
    )


def _prepared_batches(
    frames: Iterable[pd.DataFrame],
    opts: WorkerOptions,
    cancel: threading.Event | None = None,
    *,
    split: int | None = None,
) -> Generator[_Prepared, None, None]:
    """The model batches of ``frames``, in order, ``opts.batch_size`` rows each; every frame
    (cut into frames of ``split`` rows first, if given) ends with a batch whose ``last`` is
    set. Stops early once ``cancel`` is set."""
    for frame in split_frames(frames, split):
        n = len(frame)
        for start in range(0, n, opts.batch_size) or (0,):
            batch = _prepare(frame, start, min(n, start + opts.batch_size), opts, cancel)
            if batch is None:
                return
            yield batch


class _FrameRows:
    """The feature rows of one frame, filled in a model batch at a time."""

    def __init__(self, frame: pd.DataFrame, stats: BatchStats) -> None:
        n = len(frame)
        self.frame = frame
        self.stats = stats
        self.sha: list[str | None] = [None] * n
        self.width: list[int | None] = [None] * n
        self.height: list[int | None] = [None] * n
        self.errors: list[str | None] = [None] * n
        self.features: list[np.ndarray | None] = [None] * n

    def add(self, batch: _Prepared, featurizer: Featurizer) -> None:
        """Run the model on ``batch`` and keep its rows."""
        t0 = time.perf_counter()
        if batch.pixels is not None:
            out = featurizer.featurize_batch(batch.pixels)
            for row, vec in zip(batch.ok_rows, out, strict=True):
                self.features[row] = vec
        self.stats.infer_s += time.perf_counter() - t0
        self.stats.decode_s += batch.decode_s
        self.stats.wait_s += batch.wait_s
        rows = slice(batch.start, batch.stop)
        self.sha[rows] = batch.sha
        self.width[rows] = batch.width
        self.height[rows] = batch.height
        self.errors[rows] = batch.errors

    def result(self, opts: WorkerOptions) -> pd.DataFrame:
        """The frame of :data:`FEATURE_COLUMNS` (and the counts added to the stats)."""
        frame = self.frame
        self.stats.images += len(frame)
        self.stats.errors += sum(e is not None for e in self.errors)
        labels = labels_for_paths(frame["path"], opts.label_mode, opts.manifest)
        result = pd.DataFrame(
            {
                "path": frame["path"].to_numpy(),
                "label": labels.to_numpy(),
                "sha256": self.sha,
                "width": pd.array(self.width, dtype="Int32"),
                "height": pd.array(self.height, dtype="Int32"),
                "features": self.features,
                "model": opts.fingerprint,
                "runtime": opts.runtime,
                "precision": opts.precision,
                "error": self.errors,
            }
        )
        return result[FEATURE_COLUMNS]


def _featurized(
    batches: Iterator[_Prepared],
    featurizer: Featurizer,
    opts: WorkerOptions,
    new_stats: Callable[[], BatchStats],
) -> Iterator[tuple[pd.DataFrame, BatchStats]]:
    """(feature rows, stats) of each frame, from its prepared batches."""
    rows: _FrameRows | None = None
    for batch in batches:
        if rows is None:
            rows = _FrameRows(batch.frame, new_stats())
        rows.add(batch, featurizer)
        batch.pixels = None  # the model is done with them: free before the next one comes
        if batch.last:
            done, rows = rows, None
            yield done.result(opts), done.stats


def _timed(prefetch: Prefetch[_Prepared]) -> Iterator[_Prepared]:
    for prepared in prefetch:
        prepared.wait_s = prefetch.waited
        yield prepared


def featurize_frame(
    frame: pd.DataFrame, featurizer: Featurizer, opts: WorkerOptions, stats: BatchStats
) -> pd.DataFrame:
    """Feature rows for a frame with columns ``path``, ``length`` (and maybe ``content``).

    Returns a frame with exactly :data:`pool3.storage.schemas.FEATURE_COLUMNS`, one row per input
    row, in input order; ``features`` holds float32 arrays of shape (2048,) or None. Runs in
    the calling thread, one batch after the other; adds its counts and timings to ``stats``.
    """
    batches = _prepared_batches([frame], opts)
    ((rows, _),) = _featurized(batches, featurizer, opts, lambda: stats)
    return rows


def featurize_batches(
    frames: Iterator[pd.DataFrame],
    get_featurizer: Callable[[], Featurizer],
    opts: WorkerOptions,
    on_stats: Callable[[BatchStats], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The body of the ``mapInPandas`` step: frames of files in, frames of feature rows out
    (the same rows in the same order, in frames of :func:`output_rows`).

    With ``opts.prefetch`` one thread (:data:`PREFETCH_THREAD`) pulls the frames and prepares
    the next model batch while the model runs the current one, at most one batch ahead (see
    the module docstring for memory); closing this generator stops it. ``on_stats`` gets each
    frame's :class:`BatchStats` before the frame is yielded, ``opts.after_batch`` runs after.
    """
    featurizer = get_featurizer()
    if not opts.batch_size:
        batch = auto_batch_size(
            opts.worker_memory_mb,
            gpu=featurizer.device == "GPU",
            runtime=opts.runtime,
            precision=opts.precision,
            amx=has_amx(opts.precision),
        )
        opts = replace(opts, batch_size=batch)
    prepared = functools.partial(
        _prepared_batches, frames, opts, split=output_rows(opts.batch_size)
    )
    prefetch: Prefetch[_Prepared] | None = None
    if opts.prefetch:
        prefetch = Prefetch(prepared, name=PREFETCH_THREAD)
        batches: Iterator[_Prepared] = _timed(prefetch)
    else:
        batches = prepared()
    try:
        for rows, stats in _featurized(batches, featurizer, opts, BatchStats):
            if on_stats is not None:
                on_stats(stats)
            yield rows
            if opts.after_batch is not None:
                opts.after_batch()
    finally:
        if prefetch is not None:
            prefetch.close()
