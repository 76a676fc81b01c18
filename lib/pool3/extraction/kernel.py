"""What runs inside a Spark Python worker: bytes in, one feature row per file out.

Plain pandas/numpy over an iterator of frames, so it is testable without Spark; the Spark
layer (:mod:`pool3.extraction.step`) only moves bytes in and arrays out. Memory is bounded by the
model batch, not by the Arrow batch: images are decoded, resized and run ``batch_size`` at a
time. Each file's bytes are read here, a model batch at a time, through
:mod:`pool3.storage.files` (frames carry ``path, length``; a frame with a ``content`` column
is used as is). A file that cannot be read or decoded becomes a row with ``error`` set;
nothing is dropped.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from pool3.images.decode import ImageDecodeError, decode
from pool3.images.labels import labels_for_paths
from pool3.model.featurizer import Featurizer, resize_299
from pool3.storage.files import Root, read_file, too_large_error
from pool3.storage.schemas import FEATURE_COLUMNS

log = logging.getLogger(__name__)

MB = 1 << 20
#: Working memory of one image in the network at batch size 1 (activations, float32), MB;
#: measured peak RSS growth per extra image in a batch was ~30 MB on TF 2.21 CPU.
ACTIVATION_MB_PER_IMAGE = 40
#: TF runtime + one model copy in a Python worker, MB.
WORKER_BASE_MB = 1024
#: Largest automatic batch on the CPU. Inception-v3 on oneDNN gains nothing from big batches
#: on CPU: with one TF thread per worker (the profiles' one task per core), batch 4 ran
#: 1.17x and batch 8 1.09x the images/s of batch 25, every round; with two threads 4, 8 and
#: 25 were within 4 % (bench/batch_bench.py, bench/RESULTS.md 2026-11-30, AVX2 EPYC).
#: Smaller batches also keep a worker's activations (~40 MB per image) small.
MAX_AUTO_BATCH = 4
#: Batch size on a GPU: large enough to keep it busy, small enough for 16 GB cards.
GPU_BATCH = 64


def auto_batch_size(worker_memory_mb: int, *, gpu: bool = False) -> int:
    """Model batch size: 64 on a GPU, else what fits ``worker_memory_mb`` on the CPU (1..4)."""
    if gpu:
        return GPU_BATCH
    room = max(0, worker_memory_mb - WORKER_BASE_MB)
    return int(min(MAX_AUTO_BATCH, max(1, room // ACTIVATION_MB_PER_IMAGE)))


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
    #: called in the worker after each frame of rows has been sent (tests inject faults)
    after_batch: Callable[[], None] | None = field(default=None, repr=False)


@dataclass
class BatchStats:
    """Per-frame timings and counts, for the caller (:class:`pool3.extraction.step.Telemetry`)."""

    images: int = 0
    errors: int = 0
    decode_s: float = 0.0
    infer_s: float = 0.0


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


def hash_frame(frame: pd.DataFrame, opts: WorkerOptions) -> pd.DataFrame:
    """A files frame with ``sha256`` added (None where the file cannot be read)."""
    shas = []
    for i in range(len(frame)):
        data, _ = read_bytes(frame, i, opts)
        shas.append(None if data is None else hashlib.sha256(data).hexdigest())
    return frame.assign(sha256=shas)


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


def featurize_frame(
    frame: pd.DataFrame, featurizer: Featurizer, opts: WorkerOptions, stats: BatchStats
) -> pd.DataFrame:
    """Feature rows for a frame with columns ``path``, ``length`` (and maybe ``content``).

    Returns a frame with exactly :data:`pool3.storage.schemas.FEATURE_COLUMNS`, one row per input
    row, in input order; ``features`` holds float32 arrays of shape (2048,) or None.
    """
    n = len(frame)
    sha: list[str | None] = [None] * n
    width: list[int | None] = [None] * n
    height: list[int | None] = [None] * n
    errors: list[str | None] = [None] * n
    features: list[np.ndarray | None] = [None] * n
    for start in range(0, n, opts.batch_size):
        t0 = time.perf_counter()
        ok_rows, pixels = [], []
        for i in range(start, min(n, start + opts.batch_size)):
            data, errors[i] = read_bytes(frame, i, opts)
            if data is None:
                continue
            sha[i] = hashlib.sha256(data).hexdigest()
            image, errors[i] = _decode_one(data, opts)
            del data
            if image is not None:
                width[i], height[i] = image.width, image.height
                ok_rows.append(i)
                pixels.append(resize_299(image.pixels))
        t1 = time.perf_counter()
        if pixels:
            out = featurizer.featurize_batch(np.stack(pixels))
            for row, vec in zip(ok_rows, out, strict=True):
                features[row] = vec
        stats.decode_s += t1 - t0
        stats.infer_s += time.perf_counter() - t1
    stats.images += n
    stats.errors += sum(e is not None for e in errors)
    labels = labels_for_paths(frame["path"], opts.label_mode, opts.manifest)
    result = pd.DataFrame(
        {
            "path": frame["path"].to_numpy(),
            "label": labels.to_numpy(),
            "sha256": sha,
            "width": pd.array(width, dtype="Int32"),
            "height": pd.array(height, dtype="Int32"),
            "features": features,
            "model": opts.fingerprint,
            "runtime": opts.runtime,
            "precision": opts.precision,
            "error": errors,
        }
    )
    return result[FEATURE_COLUMNS]


def featurize_batches(
    frames: Iterator[pd.DataFrame],
    get_featurizer: Callable[[], Featurizer],
    opts: WorkerOptions,
    on_stats: Callable[[BatchStats], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The body of the ``mapInPandas`` step: frames of files in, frames of feature rows out."""
    featurizer = get_featurizer()
    if not opts.batch_size:
        batch = auto_batch_size(opts.worker_memory_mb, gpu=featurizer.device == "GPU")
        opts = replace(opts, batch_size=batch)
    for frame in frames:
        stats = BatchStats()
        rows = featurize_frame(frame, featurizer, opts, stats)
        if on_stats is not None:
            on_stats(stats)
        yield rows
        if opts.after_batch is not None:
            opts.after_batch()
