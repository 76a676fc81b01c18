"""Ask the executors what they run on, and ship the model once.

:func:`place_model` resolves the runtime and precision from a tiny probe job
(:func:`probe_executors`, see :mod:`pool3.model.runtime`); :func:`ship_model` converts the
model to OpenVINO IR where that runtime was chosen (cached on the driver) and ships it as a
session artifact (``SparkSession.addArtifacts(file=True)``): one code path for Spark Classic
(where it is ``SparkContext.addFile``) and Spark Connect (the client uploads it once; there is
no broadcast there). The file is named by its content's hash, so a session that ships the same
model twice sends it once, and two models never collide. Each Python worker reads it once
(``SparkFiles.get``) into its featurizer cache. Measured on the sample (bench/RESULTS.md): the
87 MB IR reaches a Connect server in ~1 s; bytes in the UDF's closure would be re-sent with every
job and break at gRPC's 128 MiB message limit.
The workers are warmed while the driver lists: :mod:`pool3.extraction.warmup`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from pool3.config import Config
from pool3.connect import ship_code, task_slots, workers_are_local
from pool3.model import ModelBundle, cached_featurizer
from pool3.model.cache import atomic_write, pool3_home
from pool3.model.runtime import HostReport, Placement, resolve, this_host

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShippedModel:
    """A model bundle shipped to the workers, with the settings its featurizer is built with.

    ``fingerprint, precision, threads`` is the key of the per-worker featurizer cache, so a
    warm-up and the featurize step that share a ``ShippedModel`` share the built model. It
    holds no model bytes itself (only the shipped file's name, ``artifact``): closures that
    capture it stay small. ``placement`` is the run's resolved runtime and precision
    (:func:`place_model`); ``row_precision`` is what the rows record
    (``int8-<calibration id>`` for int8).
    """

    fingerprint: str
    artifact: str
    threads: int
    placement: Placement
    row_precision: str

    @property
    def runtime(self) -> str:
        return self.placement.runtime

    @property
    def precision(self) -> str:
        return self.placement.precision

    @property
    def cache_key(self) -> tuple[str, str, int]:
        """The key of this model in a worker's featurizer cache (``pool3.model.featurizer``)."""
        return (
            f"{self.fingerprint}|{self.runtime}|{self.row_precision}",
            self.precision,
            self.threads,
        )

    def featurizer(self) -> Any:
        """The worker's featurizer (built on first use in this process); call in a worker."""
        if self.runtime == "tensorflow":
            from pool3.model.featurizer import import_tensorflow_in_worker

            import_tensorflow_in_worker()
        artifact = self.artifact
        return cached_featurizer(
            lambda: read_artifact(artifact),
            fingerprint=self.cache_key[0],
            threads=self.threads,
            precision=self.precision,
        )


def read_artifact(name: str) -> ModelBundle:
    """The bundle shipped as ``name`` by :func:`ship_artifact`; call in a Python worker."""
    from pyspark import SparkFiles

    with open(SparkFiles.get(name), "rb") as handle:
        bundle = pickle.load(handle)  # noqa: S301 - this run's own file, by content hash
    if not isinstance(bundle, ModelBundle):
        raise TypeError(f"the shipped model file {name} holds a {type(bundle).__name__}")
    return bundle


def ship_artifact(spark: SparkSession, bundle: ModelBundle, *, home: str | None = None) -> str:
    """Ship ``bundle`` to the session's workers as a file; returns its name.

    The file, ``<home>/shipped/pool3-model-<sha256[:20]>.pkl``, is written once per content
    (the model cache) and added with ``addArtifacts(file=True)``, which skips a file the
    session already has with the same content.
    """
    data = pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"pool3-model-{hashlib.sha256(data).hexdigest()[:20]}.pkl"
    path = pool3_home(home) / "shipped" / name
    if not path.is_file() or path.stat().st_size != len(data):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    started = time.perf_counter()
    spark.addArtifacts(str(path), file=True)
    log.info(
        "model shipped as %s (%.1f MB) in %.1f s",
        name,
        len(data) / 1e6,
        time.perf_counter() - started,
    )
    return name


def _probe(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import json

    from pyspark import TaskContext

    from pool3.model.runtime import this_host

    for _ in frames:
        pass
    ctx = TaskContext.get()
    resources = ctx.resources() if ctx is not None else {}
    gpus = list(resources["gpu"].addresses) if "gpu" in resources else []
    report = this_host(gpus)
    yield pd.DataFrame({"report": [json.dumps(dataclasses.asdict(report))]})


def probe_executors(spark: SparkSession) -> list[HostReport]:
    """What the Python workers' hosts are (CPU flags, GPUs, OpenVINO): one task per slot.

    A tiny job (no ML import; ~1 s, ~4 s as a run's first job on 2 cores), over Spark Connect
    too (``mapInPandas``). When the workers run on this host with this interpreter
    (:func:`pool3.connect.workers_are_local`: ``local[*]``), this host's report is the answer.
    """
    import json

    if workers_are_local(spark):
        return [this_host()]
    ship_code(spark)  # Spark Connect: pool3 itself, for a server that lacks it
    slots = task_slots(spark)
    rows = spark.range(0, slots, numPartitions=slots).mapInPandas(_probe, "report string").collect()
    reports = []
    for row in rows:
        doc = json.loads(row["report"])
        reports.append(HostReport(**{**doc, "flags": tuple(doc["flags"])}))
    return reports


def place_model(spark: SparkSession, config: Config) -> Placement:
    """Resolve ``model.runtime`` and ``model.precision`` from the executors, and log it."""
    settings = (config.model.runtime, config.model.precision)
    if settings == ("tensorflow", "float32"):  # needs no answer from the executors
        placement = Placement("tensorflow", "float32", "as configured (no executor probe)")
    else:
        placement = resolve(config.model.runtime, config.model.precision, probe_executors(spark))
    flags = sorted({f for h in placement.hosts for f in h.flags})
    log.info(
        "model runtime %s, precision %s (%s; executor CPU flags: %s)",
        placement.runtime,
        placement.precision,
        placement.reason,
        " ".join(flags) or "unknown",
    )
    return placement


def openvino_bundle(
    bundle: ModelBundle, ir: ModelBundle | None, *, home: str | None = None
) -> ModelBundle:
    """What OpenVINO workers get for ``bundle``: ``bundle`` itself if it is an IR (int8),
    ``ir`` if that is the float IR of this very bundle (read already), else its float IR
    from the cache (:func:`pool3.model.openvino_ir.to_openvino`)."""
    from pool3.model.openvino_ir import IR_KIND, to_openvino

    if bundle.kind == IR_KIND:
        return bundle
    if ir is not None and ir.kind == IR_KIND and ir.fingerprint == bundle.fingerprint:
        return ir
    return to_openvino(bundle, home=home)


def ship_model(
    spark: SparkSession,
    bundle: ModelBundle,
    config: Config,
    placement: Placement | None = None,
    *,
    ir: ModelBundle | None = None,
) -> ShippedModel:
    """Ship ``bundle`` for ``placement`` (resolved here if not given), see :func:`ship_artifact`.

    For OpenVINO the bundle is converted to IR first (cached; an int8 bundle from
    :func:`pool3.extraction.calibration.int8_bundle` is shipped as it is); ``ir`` is that
    float IR if the caller has it already (:class:`pool3.commands.preload.Preload`), used
    only for the bundle it was made from. Threads per worker are ``model.threads`` or
    ``spark.task.cpus``.
    """
    ship_code(spark)  # Spark Connect: pool3 itself, for a server that lacks it
    if placement is None:
        placement = place_model(spark, config)
    if placement.runtime == "openvino":
        bundle = openvino_bundle(bundle, ir, home=config.model.home or None)
    elif bundle.kind == "openvino-ir":
        raise ValueError("an OpenVINO IR bundle cannot run on the TensorFlow runtime")
    row_precision = placement.precision
    if placement.precision == "int8":
        variant = bundle.extra.get("variant", "float") if bundle.kind == "openvino-ir" else ""
        if not variant.startswith("int8-"):
            raise ValueError("precision int8 needs the bundle of calibration.int8_bundle")
        row_precision = variant
    task_cpus = int(spark.conf.get("spark.task.cpus", "1") or 1)
    return ShippedModel(
        fingerprint=bundle.fingerprint,
        artifact=ship_artifact(spark, bundle, home=config.model.home or None),
        threads=config.model.threads or task_cpus,
        placement=placement,
        row_precision=row_precision,
    )
