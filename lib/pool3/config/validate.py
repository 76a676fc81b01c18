"""Validation of single configuration values against their field's type and constraints.

Used by :mod:`pool3.config`; every failure is a :class:`~pool3.errors.ConfigError` naming the
key, the value received, where it came from and what is expected.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pool3.config.sources import suggest
from pool3.errors import ConfigError


def validate_value(name: str, value: Any, tp: Any, meta: Mapping[str, Any], origin: str) -> Any:
    """Check and normalise one value against its annotation and ``_opt`` constraints."""

    received = value

    def bad(expected: str) -> ConfigError:
        return ConfigError(
            f"invalid {name} = {received!r} (set in {origin}): expected {expected}; change it there"
        )

    choices = meta.get("choices", ())
    if tp is bool or tp == (str | bool):
        ok = isinstance(value, bool) or (tp is not bool and isinstance(value, str))
        if not ok or (choices and value not in choices):
            raise bad(f"one of {list(choices) or [True, False]}")
        return value
    if tp == (float | str):  # a number, or the one word "auto" (train.C)
        if value == "auto":
            return value
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad('a number or "auto"')
        value = float(value)
    if tp is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise bad("an integer")
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad("a number")
        value = float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string (quote it in TOML)")
        value = value.upper() if name == "spark.log_level" else value
    if typing.get_origin(tp) is tuple:
        return _validate_extensions(value, bad)
    if typing.get_origin(tp) is Mapping:
        return _validate_extra(value, bad)
    pattern = meta.get("pattern", "")
    if pattern and not re.fullmatch(pattern, value):
        raise bad(f"a value matching {pattern!r}")
    if choices and value not in choices:
        hint = suggest(str(value), [str(c) for c in choices]).removeprefix("; ")
        raise bad(f"one of {list(choices)}" + (f" ({hint})" if hint else ""))
    _check_bounds(value, meta.get("bounds", {}), bad)
    return value


def _check_bounds(value: float, bounds: Mapping[str, float], bad: Any) -> None:
    tests = {
        "ge": (">=", value >= bounds.get("ge", value)),
        "gt": (">", "gt" not in bounds or value > bounds["gt"]),
        "le": ("<=", value <= bounds.get("le", value)),
        "lt": ("<", "lt" not in bounds or value < bounds["lt"]),
    }
    if not all(ok for _, ok in tests.values()):
        raise bad(
            "a number with " + " and ".join(f"x {tests[k][0]} {b}" for k, b in bounds.items())
        )


def _validate_extensions(value: Any, bad: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise bad('a list of strings, e.g. ["jpg", "png"]')
    exts = tuple(dict.fromkeys(v.strip().lstrip(".").lower() for v in value if v.strip()))
    if not exts:
        raise bad("at least one file extension")
    return exts


def _validate_extra(value: Any, bad: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise bad('a table of Spark settings, e.g. {"spark.executor.memory" = "4g"}')
    out: dict[str, str] = {}
    for key, item in flatten(value):
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[key] = str(item)
        else:
            raise bad(f"string values in the table; {key!r} is {type(item).__name__}")
    return MappingProxyType(out)


def flatten(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted TOML keys (``spark.executor.memory = "4g"`` unquoted) nest; join them back."""
    items: list[tuple[str, Any]] = []
    for key, item in table.items():
        name = f"{prefix}{key}"
        items.extend(flatten(item, name + ".") if isinstance(item, Mapping) else [(name, item)])
    return items
