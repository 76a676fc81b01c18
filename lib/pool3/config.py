"""Run configuration: one frozen, validated dataclass tree.

Layers, lowest to highest precedence (see ``conf/README.md``):

1. built-in defaults (the dataclasses below);
2. a TOML profile (``load_config("local")`` -> ``conf/local.toml``, or a path to a ``.toml``);
3. ``local-overrides.toml`` next to that profile, if present (git-ignored, never committed);
4. environment variables ``POOL3_<SECTION>__<KEY>``, e.g. ``POOL3_MODEL__SOURCE=/x/graph.pb``;
5. CLI overrides ``{"model.source": "/x/graph.pb", "spark.extra.spark.executor.memory": "4g"}``.

``spark.extra`` tables are merged key by key across layers; every other value is replaced.
Unknown keys and invalid values raise :class:`~pool3.errors.ConfigError` naming the key,
where it came from, what was received and what is expected.
"""

from __future__ import annotations

import json
import logging
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from pool3.config_sources import Setting, collect_settings
from pool3.config_validate import flatten, validate_value

logger = logging.getLogger(__name__)

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
    """Spark session settings. ``master`` is set only when non-empty (spark-submit gives it)."""

    master: str = ""
    app_name: str = "pool3"
    task_cpus: int = _opt(1, ge=1)
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    log_level: str = _opt(
        "WARN", choices=("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")
    )


@dataclass(frozen=True)
class ModelConfig:
    """Feature model: ``source`` is ``"default"`` (shipped weights) or a .pb/.h5/.keras/.pt path."""

    source: str = "default"
    precision: str = _opt("float32", choices=("float32", "bfloat16", "auto"))
    batch_size: int = _opt(0, ge=0)  # 0: chosen from worker memory
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
    partitions: int = _opt(0, ge=0)  # 0: auto
    max_file_mb: int = _opt(64, gt=0)
    # build the model in the Python workers while the driver lists the input (pool3.shipping)
    warm_up: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """Train/test split and ``LinearSVC`` hyperparameters (see scikit-learn for their meaning)."""

    test_size: float = _opt(0.2, gt=0.0, lt=1.0)
    seed: int = _opt(42, ge=0, le=2**32 - 1)
    stratify: bool = True
    C: float = _opt(1.0, gt=0.0)
    loss: str = _opt("squared_hinge", choices=("hinge", "squared_hinge"))
    penalty: str = _opt("l2", choices=("l1", "l2"))
    multi_class: str = _opt("ovr", choices=("ovr", "crammer_singer"))
    dual: str | bool = _opt("auto", choices=("auto", True, False))
    max_iter: int = _opt(1000, ge=1)
    # auto: liblinear/SGD on the driver, Spark MLlib when the table exceeds max_collect_mb
    solver: str = _opt("auto", choices=("auto", "liblinear", "sgd", "spark"))
    n_jobs: int = _opt(1, ge=-1)
    # solver "spark": binary fits run at once; each caches its own copy of the training set
    spark_parallelism: int = _opt(2, ge=1)
    max_collect_mb: int = _opt(4096, gt=0)
    min_accuracy: float = _opt(0.0, ge=0.0, le=1.0)


@dataclass(frozen=True)
class ClassifyConfig:
    """Scoring of new images."""

    top_k: int = _opt(3, ge=1)


@dataclass(frozen=True)
class OutputConfig:
    """What to do when the output exists: ``error``, ``overwrite`` or ``incremental``."""

    mode: str = _opt("error", choices=("error", "overwrite", "incremental"))


_SECTION_TYPES: dict[str, type] = {
    "spark": SparkConfig,
    "model": ModelConfig,
    "featurize": FeaturizeConfig,
    "train": TrainConfig,
    "classify": ClassifyConfig,
    "output": OutputConfig,
}


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one run; build it with :func:`load_config`."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    featurize: FeaturizeConfig = field(default_factory=FeaturizeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

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


def _schema() -> dict[str, dict[str, Any]]:
    """Section -> field -> resolved type annotation."""
    return {name: typing.get_type_hints(cls) for name, cls in _SECTION_TYPES.items()}


def load_config(
    profile: str | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Resolve defaults < profile file < local overrides < env < CLI into a :class:`Config`.

    Parameters
    ----------
    profile : str or None
        Profile name (``"local"`` -> ``local.toml`` searched in ``$POOL3_CONF_DIR``, ``./conf``
        and the repository's ``conf/``) or a path to a ``.toml`` file; None: no file.
    overrides : mapping of str to object, optional
        ``"section.key" -> value`` from the command line; None values are ignored (flag not
        given); strings are parsed as TOML literals for non-string fields.
    env : mapping of str to str, optional
        Environment to read ``POOL3_*`` variables from; default ``os.environ``.

    Raises
    ------
    ConfigError
        Unknown profile, section or key, or a value of the wrong type or range.
    """
    schema = _schema()
    settings, files = collect_settings(profile, schema=schema, overrides=overrides, env=env)
    config = _build(settings, schema)
    logger.info(
        "config (files: %s): %s",
        ", ".join(files) or "none",
        json.dumps(config.to_dict(), sort_keys=True),
    )
    return config


def _build(settings: list[Setting], schema: dict[str, dict[str, Any]]) -> Config:
    """Merge settings in order (``spark.extra`` key by key) and validate every value."""
    merged: dict[str, dict[str, tuple[Any, str]]] = {name: {} for name in schema}
    for setting in settings:
        current = merged[setting.section].get(setting.key)
        value = setting.value
        if setting.key == "extra" and isinstance(value, Mapping):
            value = dict(flatten(value))
            if current is not None and isinstance(current[0], Mapping):
                value = {**current[0], **value}
        merged[setting.section][setting.key] = (value, setting.origin)
    sections = {}
    for name, cls in _SECTION_TYPES.items():
        meta = {f.name: f.metadata for f in fields(cls)}
        kwargs = {
            key: validate_value(f"{name}.{key}", value, schema[name][key], meta[key], origin)
            for key, (value, origin) in merged[name].items()
        }
        sections[name] = cls(**kwargs)
    return Config(**sections)
