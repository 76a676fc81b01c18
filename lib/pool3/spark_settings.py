"""The Spark settings pool3 applies to a session (:func:`session_conf`), and the Arrow batch
size among them, chosen from a worker's memory (:func:`records_per_batch`).

Memory model behind ``spark.sql.execution.arrow.maxRecordsPerBatch``
---------------------------------------------------------------------
The featurize UDF receives Arrow batches of rows holding the *encoded* image bytes
(typically 20 KB - 1 MB, at most ``featurize.max_file_mb``) and decodes each to a
299 x 299 x 3 float32 array: 299 * 299 * 3 * 4 B = 1,072,812 B, about 1.07 MB. While a batch
is processed a Python worker holds its raw bytes (Arrow buffer) and its decoded arrays, so we
count ``RECORD_MB`` (about 2.1 MB) per row, and let one Arrow batch use at most
``BATCH_MEMORY_FRACTION`` (a quarter) of ``featurize.worker_memory_mb``; the rest is for the
TensorFlow runtime and weights (about 0.5-1 GB), the model's activations for one model batch,
and pandas/Arrow copies. Smaller batches cost little (the JVM <-> Python hop is cheap next to
Inception-v3 inference) and keep a worker from being killed for memory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

from pool3.config import Config
from pool3.errors import ConfigError

DECODED_IMAGE_MB = 299 * 299 * 3 * 4 / 1e6  # one float32 input image, ~1.07 MB
RAW_IMAGE_MB = 1.0  # allowance for the encoded bytes of one image
RECORD_MB = DECODED_IMAGE_MB + RAW_IMAGE_MB
BATCH_MEMORY_FRACTION = 0.25
MIN_RECORDS, MAX_RECORDS = 8, 4096
#: every automatic model batch size divides it (``pool3.extraction.batching.auto_batch_size``)
AUTO_BATCH_MULTIPLE = 16


def records_per_batch(worker_memory_mb: int, batch_size: int) -> int:
    """Rows per Arrow batch such that one batch's decoded images fit in a worker's budget.

    Parameters
    ----------
    worker_memory_mb : int
        Memory one Python worker may use (``featurize.worker_memory_mb``), > 0.
    batch_size : int
        Model batch size (``model.batch_size``); 0 = chosen by the model from memory.

    Returns
    -------
    int
        ``floor(worker_memory_mb * BATCH_MEMORY_FRACTION / RECORD_MB)`` clamped to
        ``[MIN_RECORDS, MAX_RECORDS]``. With ``batch_size > 0`` it is rounded
        down to a whole number of model batches, and is at least one batch: an explicit
        batch size is honoured even when it exceeds the memory estimate. With 0 it is rounded
        down to a multiple of :data:`AUTO_BATCH_MULTIPLE` (2048 MB -> 240), so that the
        automatic model batches (4, or 16 on AMX, at the default memory) fill every Arrow
        batch.
    """
    if isinstance(worker_memory_mb, bool) or worker_memory_mb <= 0:
        raise ConfigError(
            f"worker_memory_mb must be a positive number of MB, got {worker_memory_mb!r}; "
            "set featurize.worker_memory_mb"
        )
    if isinstance(batch_size, bool) or batch_size < 0:
        raise ConfigError(
            f"batch_size must be >= 0 (0 = automatic), got {batch_size!r}; set model.batch_size"
        )
    records = int(worker_memory_mb * BATCH_MEMORY_FRACTION / RECORD_MB)
    records = min(max(records, MIN_RECORDS), MAX_RECORDS)
    if batch_size:
        records = batch_size * max(1, records // batch_size)
    elif records >= AUTO_BATCH_MULTIPLE:  # whole model batches of any automatic size
        records -= records % AUTO_BATCH_MULTIPLE
    return records


def session_conf(config: Config, *, app_name: str | None = None) -> dict[str, str]:
    """The Spark settings :func:`build_session` applies, in order (``spark.extra`` last).

    ``spark.master`` is present only when ``config.spark.master`` is non-empty.
    """
    conf: dict[str, str] = {}
    if config.spark.master:
        conf["spark.master"] = config.spark.master
    conf.update(
        {
            "spark.app.name": app_name or config.spark.app_name,
            "spark.task.cpus": str(config.spark.task_cpus),
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.execution.arrow.maxRecordsPerBatch": str(
                records_per_batch(config.featurize.worker_memory_mb, config.model.batch_size)
            ),
            "spark.python.worker.reuse": "true",
            "spark.sql.parquet.compression.codec": "snappy",
            # Our commit writes _SUCCESS last, after the manifest (storage.outputs.commit_output).
            "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
            # Executors on a cluster do not inherit the driver's environment.
            "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
    )
    conf.update(config.spark.extra)
    return conf


def set_worker_python(environ: MutableMapping[str, str]) -> None:
    """Point ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` at ``sys.executable`` when unset.

    Python workers then import the same environment (TensorFlow, pool3) as the driver.
    Values already set are kept; on a cluster whose nodes have another Python, set
    ``PYSPARK_PYTHON`` or ``spark.pyspark.python`` explicitly (the latter wins in Spark).
    """
    environ.setdefault("PYSPARK_PYTHON", sys.executable)
    environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
