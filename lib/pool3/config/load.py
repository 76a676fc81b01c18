"""Resolving the run configuration: one frozen, validated dataclass tree.

Layers, lowest to highest precedence (see ``conf/README.md``):

1. built-in defaults (the dataclasses of :mod:`pool3.config.sections`);
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
import typing
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from pool3.config.sections import _SECTION_TYPES, Config
from pool3.config.sources import Setting, collect_settings
from pool3.config.validate import flatten, validate_value

logger = logging.getLogger(__name__)


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
    # the resolved values go to the run manifest; the console gets them with --verbose
    logger.debug(
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
