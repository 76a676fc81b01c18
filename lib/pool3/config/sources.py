"""Where configuration values come from: profile files, local overrides, env and CLI.

Each source yields :class:`Setting` records that remember their origin, so that
:mod:`pool3.config` can say *where* a bad value came from. Unknown sections and keys are
rejected here, with the valid names and the closest match.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pool3.errors import ConfigError

ENV_PREFIX = "POOL3_"
CONF_DIR_ENV = "POOL3_CONF_DIR"
LOCAL_OVERRIDES = "local-overrides.toml"

Schema = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Setting:
    """One value from one source; ``origin`` reads like ``file /repo/conf/local.toml``."""

    section: str
    key: str
    value: Any
    origin: str


def suggest(word: str, options: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest option (case-insensitive), or ``""``."""
    by_lower = {o.lower(): o for o in options}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[matches[0]]!r}?" if matches else ""


#: The committed profiles, shipped as package data (``conf/*.toml`` in a checkout link here).
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def conf_dirs(env: Mapping[str, str]) -> list[Path]:
    """Profile search path: ``$POOL3_CONF_DIR``, ``./conf``, then the package's profiles."""
    dirs = [Path(env[CONF_DIR_ENV]).expanduser()] if env.get(CONF_DIR_ENV) else []
    dirs += [Path.cwd() / "conf", PROFILES_DIR]
    unique: dict[Path, None] = {}
    for d in dirs:
        unique.setdefault(d.resolve(), None)
    return list(unique)


def find_profile(profile: str, env: Mapping[str, str]) -> Path:
    """Resolve a profile name (``local``) or a path to a ``.toml`` file to an existing file."""
    if profile.endswith(".toml") or "/" in profile or os.sep in profile:
        path = Path(profile).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {profile!r} not found; expected an existing .toml file, "
                "or a profile name such as 'local' or 'cluster'"
            )
        return path.resolve()
    dirs = conf_dirs(env)
    for directory in dirs:
        if (directory / f"{profile}.toml").is_file():
            # not resolved: conf/local.toml may link to the package's profile, and its
            # local-overrides.toml is the one next to the link
            return (directory / f"{profile}.toml").absolute()
    available = sorted(
        {p.stem for d in dirs if d.is_dir() for p in d.glob("*.toml") if p.name != LOCAL_OVERRIDES}
    )
    raise ConfigError(
        f"unknown config profile {profile!r}: no {profile}.toml in "
        f"{', '.join(str(d) for d in dirs)}; available profiles: {available}"
        f"{suggest(profile, available)}; or set {CONF_DIR_ENV}, or pass a path to a .toml file"
    )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file; syntax and IO errors become :class:`ConfigError`."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"cannot parse config file {path}: {err}; fix its TOML syntax") from err
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err


def _check_key(section: str, key: str, origin: str, schema: Schema) -> None:
    if section not in schema:
        valid = list(schema)
        raise ConfigError(
            f"unknown config section {section!r} (from {origin}); valid sections: "
            f"{', '.join(valid)}{suggest(section, valid)}"
        )
    if key not in schema[section]:
        valid = list(schema[section])
        raise ConfigError(
            f"unknown config key {section}.{key} (from {origin}); valid keys in [{section}]: "
            f"{', '.join(valid)}{suggest(key, valid)}"
        )


def file_settings(data: Mapping[str, Any], origin: str, schema: Schema) -> list[Setting]:
    """Settings from a parsed TOML document whose top-level tables are sections."""
    settings = []
    for section, table in data.items():
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"top-level key {section!r} (from {origin}) is not a [section] table; "
                f"put settings under one of [{'], ['.join(schema)}]{suggest(section, list(schema))}"
            )
        for key, value in table.items():
            _check_key(section, key, origin, schema)
            settings.append(Setting(section, key, value, origin))
    return settings


def parse_text(text: str, tp: Any) -> Any:
    """A string from env or CLI -> a value: TOML literal when possible, else the string.

    String fields keep the text as is (``POOL3_MODEL__SOURCE=/x/graph.pb``); a list field
    also accepts ``jpg,png``; validation later reports anything that still does not fit.
    """
    if tp is str:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    if typing.get_origin(tp) is tuple:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def env_settings(env: Mapping[str, str], schema: Schema) -> list[Setting]:
    """Settings from ``POOL3_<SECTION>__<KEY>`` variables (names case-insensitive)."""
    settings = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue  # POOL3_HOME, POOL3_CONF_DIR, ... are not settings
        section_part, _, key_part = name[len(ENV_PREFIX) :].partition("__")
        section = section_part.lower()
        keys = {k.lower(): k for k in schema.get(section, {})}
        key = keys.get(key_part.lower(), key_part.lower())
        origin = f"env {name}"
        _check_key(section, key, origin, schema)
        settings.append(Setting(section, key, parse_text(env[name], schema[section][key]), origin))
    return settings


def override_settings(overrides: Mapping[str, object], schema: Schema) -> list[Setting]:
    """Settings from CLI ``{"section.key": value}``; ``spark.extra.<conf>`` sets one Spark conf."""
    settings = []
    for dotted, value in overrides.items():
        if value is None:
            continue  # the flag was not given
        section, _, key = dotted.partition(".")
        origin = f"cli {dotted}"
        if section == "spark" and key.startswith("extra.") and len(key) > len("extra."):
            settings.append(Setting("spark", "extra", {key[len("extra.") :]: value}, origin))
            continue
        _check_key(section, key, origin, schema)
        if isinstance(value, str):
            value = parse_text(value, schema[section][key])
        settings.append(Setting(section, key, value, origin))
    return settings


def collect_settings(
    profile: str | None,
    *,
    schema: Schema,
    overrides: Mapping[str, object] | None,
    env: Mapping[str, str] | None,
) -> tuple[list[Setting], list[str]]:
    """All settings, lowest precedence first, and the config files that were read."""
    environ: Mapping[str, str] = os.environ if env is None else env
    settings: list[Setting] = []
    files: list[str] = []
    if profile:
        path = find_profile(profile, environ)
        local = path.parent / LOCAL_OVERRIDES
        for source in [path] + ([local] if local.is_file() and local != path else []):
            settings += file_settings(read_toml(source), f"file {source}", schema)
            files.append(str(source))
    settings += env_settings(environ, schema)
    settings += override_settings(overrides or {}, schema)
    return settings, files
