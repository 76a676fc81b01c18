"""Where pool3 keeps its caches on a machine: converted weights, OpenVINO IR, JVM archive."""

from __future__ import annotations

import os
from pathlib import Path


def pool3_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``home`` if given, else ``$POOL3_HOME``, else ``~/.cache/pool3``."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get("POOL3_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pool3"
