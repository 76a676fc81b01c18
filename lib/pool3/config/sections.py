"""The schema of every setting: one frozen dataclass per config section.

Each field is declared once, with its default, its choices or bounds (:func:`_opt`); the
CLI's ``choices=`` (:func:`choices_of`), the validation (:mod:`pool3.config.validate`) and
the code all read these declarations. ``[train]`` *is* the training parameters
(:class:`TrainParams`, what the solvers receive) plus the job's own settings
(:class:`TrainConfig`: collect limit, accuracy gate, Spark parallelism).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

_SECRET_WORDS = ("password", "secret", "token", "key", "credential")
_URL_USERINFO = re.compile(r"(//)[^/@\s]+@")


def _opt(default: Any, *, choices: tuple[Any, ...] = (), pattern: str = "", **bounds: float) -> Any:
    """A dataclass field whose value must be one of ``choices``, match ``pattern`` (a regex
    with a human-readable meaning in the field's comment) and/or lie within ``bounds``
    (keys ``ge``, ``gt``, ``le``, ``lt`` for ``>=``, ``>``, ``<=``, ``<``).
    """
    meta = {"choices": choices, "pattern": pattern, "bounds": bounds}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SparkConfig:
    """Spark session settings. ``master`` is set only when non-empty (spark-submit gives it);
    ``remote`` (``sc://host:port``, or ``SPARK_REMOTE``) runs over Spark Connect instead."""

    master: str = ""
    remote: str = _opt("", pattern=r"(sc://.+)?")
    # Spark Connect: how long a client retries a server that stopped answering (per outage),
    # then fails; 45: the run ends within a minute of the server's death, abort included
    remote_timeout_seconds: int = _opt(45, ge=5)
    app_name: str = "pool3"
    task_cpus: int = _opt(1, ge=1)
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    log_level: str = _opt(
        "WARN", choices=("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")
    )
    # featurize/classify in a driver JVM pool3 starts itself (local runs): JIT with C1 only,
    # ~2.4 s less start-up; the JVM's own Parquet writes ~35% slower (README, Performance)
    quick_jit: bool = True
    # false: none of the speed-ups that use pyspark's private names (pool3.spark_internals)
    internals: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Feature model: ``source`` is ``"default"`` (shipped weights) or a .pb/.h5/.keras/.pt path."""

    source: str = "default"
    # auto: OpenVINO on CPU workers, TensorFlow where the workers have a GPU (pool3.model.runtime)
    runtime: str = _opt("auto", choices=("auto", "openvino", "tensorflow"))
    # auto: bfloat16 where the executors' CPUs run it natively (AMX, AVX-512-BF16), else float32
    precision: str = _opt("auto", choices=("auto", "float32", "bfloat16", "int8"))
    # int8 only: images to calibrate on ("" = a seeded sample of the job's own input)
    calibration: str = ""
    calibration_images: int = _opt(300, ge=1)
    batch_size: int = _opt(0, ge=0)  # 0: from runtime, precision, AMX and worker memory
    threads: int = _opt(0, ge=0)  # 0: from spark.task.cpus
    home: str = ""  # model cache; "": $POOL3_HOME or ~/.cache/pool3


@dataclass(frozen=True)
class FeaturizeConfig:
    """Image listing, decoding limits and the error budget of the featurize step."""

    # filename (the tutorial's name_<n>.jpg), folder, none, or manifest:FILE (path,label table)
    labels: str = _opt("filename", pattern=r"filename|folder|none|manifest:.+")
    extensions: tuple[str, ...] = ("jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff")
    max_pixels: int = _opt(50_000_000, gt=0)
    apply_exif_orientation: bool = False
    max_error_rate: float = _opt(0.05, ge=0.0, le=1.0)
    worker_memory_mb: int = _opt(2048, ge=64)
    progress_every: int = _opt(500, ge=0)
    # Spark tasks the listed files are spread over; 0: one per 128 files, at least one per slot
    partitions: int = _opt(0, ge=0)
    max_file_mb: int = _opt(64, gt=0)
    # build the model in the Python workers while the driver lists (pool3.extraction.shipping)
    warm_up: bool = True
    # read and decode the next model batch in a thread while the model runs the current one
    prefetch: bool = True


@dataclass(frozen=True)
class TrainParams:
    """How to split and fit: the tutorial's ``LinearSVC`` and 80/20 split by default.

    The held-out split (``split``) is the same whatever solver runs
    (:mod:`pool3.training.table.split`): ``"content"`` (default) puts an image in the test set
    by a hash of its content (``sha256``) and ``seed``, stratified per class unless
    ``stratify`` is false, so that it is reproducible, independent of listing order,
    stable when the collection grows, and exact duplicates never straddle train and test.
    ``"sklearn"`` is the tutorial's ``train_test_split(test_size, random_state=seed)``
    over the usable rows sorted by path.

    ``solver`` (:mod:`pool3.training.solvers.choose`): ``"auto"`` fits the float32 Newton solver
    of liblinear's objective on the driver while the feature array fits ``max_collect_mb``
    and the driver's memory, else ``"spark"``: the same Newton iterations on the cluster
    (liblinear for the objectives Newton does not fit). ``"newton"`` and ``"spark"`` fit the default
    objective only (``loss="squared_hinge"``, ``penalty="l2"``, ``multi_class="ovr"``);
    ``"mllib"`` is Spark MLlib's one-vs-rest ``LinearSVC`` (the plain hinge loss, l2/ovr,
    for comparison). ``dual`` and ``n_jobs`` apply to liblinear/SGD only. Cross-field
    rules are checked when the section is built (:func:`pool3.config.rules.check_train`),
    before any JVM starts.
    """

    split: str = _opt("content", choices=("content", "sklearn"))
    test_size: float = _opt(0.2, gt=0.0, lt=1.0)
    seed: int = _opt(42, ge=0, le=2**32 - 1)
    stratify: bool = True
    # a number > 0, or "auto": chosen by stratified cross-validation on the training split
    # (pool3.training.solvers.c_search; driver solvers only)
    C: float | str = _opt(1.0, gt=0.0)
    cv_folds: int = _opt(5, ge=2)  # folds of C = "auto"
    loss: str = _opt("squared_hinge", choices=("hinge", "squared_hinge"))
    penalty: str = _opt("l2", choices=("l1", "l2"))
    multi_class: str = _opt("ovr", choices=("ovr", "crammer_singer"))
    dual: str | bool = _opt("auto", choices=("auto", True, False))
    max_iter: int = _opt(1000, ge=1)
    tol: float = _opt(1e-4, gt=0.0)
    # auto: newton on the driver while the float32 array fits max_collect_mb and the
    # driver's memory, else spark (Newton on the cluster); liblinear for other objectives
    solver: str = _opt("auto", choices=("auto", "liblinear", "sgd", "newton", "spark", "mllib"))
    n_jobs: int = _opt(1, ge=-1)  # -1: all cores; 0 is refused (check_train)
    dtype: str = _opt("float32", choices=("float32", "float64"))
    # newton, spark: start from a fit of 1 training row in 8
    # (pool3.training.newton.method.sample_start)
    warm_start: bool = True

    def __post_init__(self) -> None:
        from pool3.config.rules import check_section

        check_section(self, origin=f"{type(self).__name__}(...)")

    @property
    def newton_compatible(self) -> bool:
        """Whether the Newton solvers (``newton``, ``spark``) fit these settings."""
        return self.loss == "squared_hinge" and self.penalty == "l2" and self.multi_class == "ovr"


@dataclass(frozen=True)
class TrainConfig(TrainParams):
    """The ``[train]`` section: :class:`TrainParams` plus how the ``train`` job runs."""

    # solver "mllib": binary fits run at once; each caches its own copy of the training set
    spark_parallelism: int = _opt(2, ge=1)
    # MB of float32 features a driver solver may hold; 0: no fixed cap with a local master
    # (then 60% of the available memory decides), 4096 on a cluster
    max_collect_mb: float = _opt(0, ge=0)
    # solver "spark": MB of active rows the driver may hold for its CG steps (beyond it a
    # Newton step's CG runs as Spark jobs); 0: a quarter of its available memory, within
    # what max_collect_mb lets it hold
    active_rows_mb: float = _opt(0, ge=0)
    min_accuracy: float = _opt(0.0, ge=0.0, le=1.0)


@dataclass(frozen=True)
class ClassifyConfig:
    """Scoring of new images."""

    top_k: int = _opt(3, ge=1)


@dataclass(frozen=True)
class ReportConfig:
    """What ``pool3 train`` checks and shows besides the metrics (``report.html``).

    ``duplicates``: look for exact (same ``sha256``) and near duplicates (cosine of the
    features ``>= duplicate_cosine``) and label conflicts; ``thumbnails``: embed small
    pictures of the images behind the numbers (read again from their paths).
    """

    duplicates: bool = True
    duplicate_cosine: float = _opt(0.98, gt=0.0, le=1.0)
    thumbnails: bool = True
    thumbnail_px: int = _opt(96, ge=32, le=256)


@dataclass(frozen=True)
class OutputConfig:
    """What to do when the output exists: ``error``, ``overwrite`` or ``incremental``.

    ``lock_timeout_seconds``: a run owns its output through a lock with a heartbeat (every
    tenth of this); a lock whose heartbeat is older than this is taken to be a dead run's.
    """

    mode: str = _opt("error", choices=("error", "overwrite", "incremental"))
    lock_timeout_seconds: int = _opt(600, ge=5)


@dataclass(frozen=True)
class MlflowConfig:
    """MLflow tracking of ``pool3 train`` and ``pool3 featurize`` runs (README, "MLflow"):
    off unless ``enabled`` (``--mlflow``). MLflow's own variables apply
    (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``, ``MLFLOW_RUN_ID``,
    ``MLFLOW_TRACKING_TOKEN``...); a non-empty setting here wins over them.
    """

    enabled: bool = False
    tracking_uri: str = ""  # "": MLFLOW_TRACKING_URI, else MLflow's default
    experiment: str = ""  # "": MLFLOW_EXPERIMENT_NAME, else "pool3"
    run_name: str = ""  # "": MLflow names the run
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # train: log the classifier with its featurizer as an MLflow model (the pool3 flavor)
    log_model: bool = True
    # train: register the logged model under this name ("": not registered) ...
    registered_model_name: str = ""
    # ... and point this alias at the new version ("": no alias)
    alias: str = ""
    # false: a tracking server that cannot be reached is a warning, and the run goes on
    required: bool = True


_SECTION_TYPES: dict[str, type] = {
    "spark": SparkConfig,
    "model": ModelConfig,
    "featurize": FeaturizeConfig,
    "train": TrainConfig,
    "classify": ClassifyConfig,
    "report": ReportConfig,
    "output": OutputConfig,
    "mlflow": MlflowConfig,
}


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one run; build it with :func:`load_config`."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    featurize: FeaturizeConfig = field(default_factory=FeaturizeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    @property
    def sections(self) -> dict[str, Any]:
        """Section name -> section dataclass, in declaration order."""
        return {name: getattr(self, name) for name in _SECTION_TYPES}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able dict for logs and run manifests, with secrets replaced by ``"***"``.

        Redacted: ``spark.extra`` entries whose key contains password/secret/token/key/
        credential, and the ``user:password@`` part of any URL in a string value.
        """
        out: dict[str, dict[str, Any]] = {}
        for name, section in self.sections.items():
            values: dict[str, Any] = {}
            for f in fields(section):
                value = getattr(section, f.name)
                if isinstance(value, Mapping):
                    value = {k: _redact(k, v) for k, v in sorted(value.items())}
                elif isinstance(value, tuple):
                    value = list(value)
                elif isinstance(value, str):
                    value = _URL_USERINFO.sub(r"\1***@", value)
                values[f.name] = value
            out[name] = values
        return out


def _redact(key: str, value: str) -> str:
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "***"
    return _URL_USERINFO.sub(r"\1***@", value)


def choices_of(section: type, name: str) -> tuple[Any, ...]:
    """The declared choices of ``section.name``, e.g. ``choices_of(TrainConfig, "solver")``.

    The one list that the CLI's ``choices=``, the config validation and the code share.
    """
    for f in fields(section):
        if f.name == name:
            found: tuple[Any, ...] = f.metadata.get("choices", ())
            if found:
                return found
            break
    raise KeyError(f"{section.__name__}.{name} declares no choices")
