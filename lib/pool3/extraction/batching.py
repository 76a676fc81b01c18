"""The model batch size a worker uses when ``model.batch_size`` is 0 (automatic), and the
size of the frames of rows it sends back.

May import: :mod:`pool3.model`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import pandas as pd

from pool3.model.runtime import cpu_flags as read_cpu_flags

#: Working memory of one image in the network at batch size 1 (activations, float32), MB;
#: measured peak RSS growth per extra image in a batch was ~30 MB on TF 2.21 CPU.
ACTIVATION_MB_PER_IMAGE = 40
#: TF runtime + one model copy in a Python worker, MB.
WORKER_BASE_MB = 1024
#: Largest automatic batch on the CPU. Inception-v3 on oneDNN gains nothing from big batches
#: on CPU: with one TF thread per worker (the profiles' one task per core), batch 4 ran
#: 1.17x and batch 8 1.09x the images/s of batch 25, every round; with two threads 4, 8 and
#: 25 were within 4 % (bench/RESULTS.md 2026-11-30, AVX2 EPYC; now python -m bench run featurize).
#: Smaller batches also keep a worker's activations (~40 MB per image) small.
MAX_AUTO_BATCH = 4
#: Batch size on a GPU: large enough to keep it busy, small enough for 16 GB cards.
GPU_BATCH = 64
#: Largest automatic batch for OpenVINO in bfloat16 or int8 on a CPU with AMX, where bigger
#: batches pay: OpenVINO bfloat16 in one process ran 94 images/s at batch 16 against 85 at
#: batch 4 (measured on an AMX Xeon).
AMX_AUTO_BATCH = 16
#: Working memory of one image in the network for OpenVINO bfloat16/int8, MB. An estimate,
#: not a measurement: the float32 figure (:data:`ACTIVATION_MB_PER_IMAGE`) halved.
LOW_PRECISION_ACTIVATION_MB_PER_IMAGE = ACTIVATION_MB_PER_IMAGE // 2


def auto_batch_size(
    worker_memory_mb: int,
    *,
    gpu: bool = False,
    runtime: str = "tensorflow",
    precision: str = "float32",
    amx: bool = False,
) -> int:
    """Model batch size: 64 on a GPU, else what fits ``worker_memory_mb`` on the CPU.

    On the CPU: as many images of :data:`ACTIVATION_MB_PER_IMAGE` as fit above
    :data:`WORKER_BASE_MB`, 1 to :data:`MAX_AUTO_BATCH` (4); for OpenVINO in bfloat16 or
    int8 (``precision`` ``"bfloat16"`` or ``"int8..."``) on a CPU with AMX (``amx``:
    AMX-BF16 for bfloat16, AMX-INT8 for int8), images of
    :data:`LOW_PRECISION_ACTIVATION_MB_PER_IMAGE`, 1 to :data:`AMX_AUTO_BATCH` (16), rounded
    down to a power of two (so that it divides the Arrow batches of
    ``pool3.spark_settings.records_per_batch``).
    """
    if gpu:
        return GPU_BATCH
    room = max(0, worker_memory_mb - WORKER_BASE_MB)
    low_precision = precision == "bfloat16" or precision.startswith("int8")
    if amx and runtime == "openvino" and low_precision:
        fits = int(min(AMX_AUTO_BATCH, max(1, room // LOW_PRECISION_ACTIVATION_MB_PER_IMAGE)))
        return 1 << (fits.bit_length() - 1)  # a power of two: it divides every Arrow batch
    return int(min(MAX_AUTO_BATCH, max(1, room // ACTIVATION_MB_PER_IMAGE)))


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's flags among :data:`pool3.model.runtime.REPORTED_FLAGS` (read once)."""
    return frozenset(read_cpu_flags())


def amx_flag(precision: str) -> str | None:
    """The CPU flag that puts ``precision`` on AMX: ``amx_bf16``, ``amx_int8``, or None."""
    if precision == "bfloat16":
        return "amx_bf16"
    if precision.startswith("int8"):
        return "amx_int8"
    return None


def has_amx(precision: str) -> bool:
    """Whether this CPU has AMX for ``precision``: AMX-BF16 for bfloat16, AMX-INT8 for int8."""
    flag = amx_flag(precision)
    return flag is not None and flag in cpu_flags()


#: A worker sends its rows in frames of about this many (whole model batches), not one frame
#: per Arrow batch: the JVM converts and writes each frame while the worker computes the
#: next, instead of all of a task's rows after its last batch (~0.2-0.7 s per task of 100
#: images on 2 cores, with the cores idle meanwhile).
OUTPUT_ROWS = 16


def output_rows(batch_size: int) -> int:
    """Rows per output frame: :data:`OUTPUT_ROWS` rounded up to whole model batches."""
    return batch_size * -(-OUTPUT_ROWS // batch_size)


def split_frames(frames: Iterable[pd.DataFrame], rows: int | None) -> Iterator[pd.DataFrame]:
    """``frames`` cut into frames of at most ``rows`` rows (None: as they are), in order."""
    for frame in frames:
        if rows is None or len(frame) <= rows:
            yield frame
        else:
            for start in range(0, len(frame), rows):
                yield frame.iloc[start : start + rows]
