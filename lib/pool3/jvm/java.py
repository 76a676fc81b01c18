"""The Java that Spark will start: its version checked before any JVM starts, and whether
pool3 starts the driver JVM itself (only then does it choose that JVM's options)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pool3.errors import ConfigError
from pool3.spark_internals import jvm_started

MIN_JAVA = 17
_JAVA_HINT = "pyspark 4 needs Java 17: apt-get install openjdk-17-jre-headless, or set JAVA_HOME"


def pool3_starts_jvm() -> bool:
    """Whether the next session starts its driver JVM here (not yet running, and not one that
    ``spark-submit`` launched for us: it sets ``PYSPARK_GATEWAY_PORT``); see
    :func:`pool3.spark_internals.jvm_started`."""
    return not jvm_started()


def parse_java_version(text: str) -> int | None:
    """Major version from ``java -version`` output (``"1.8.0_292"`` -> 8, ``"17.0.15"`` -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java(*, env: Mapping[str, str] | None = None) -> str:
    """Fail early, with a fix, if the ``java`` Spark will start is missing or older than 17;
    returns its path.

    Uses ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set (as Spark's launcher does), else
    ``java`` on ``PATH`` (both from ``env``, default ``os.environ``).

    Raises
    ------
    ConfigError
        No java, java that does not run, or a version below 17.
    """
    environ = os.environ if env is None else env
    if environ.get("JAVA_HOME"):
        java = str(Path(environ["JAVA_HOME"]) / "bin" / "java")
        where = f"JAVA_HOME={environ['JAVA_HOME']}"
    else:
        java = shutil.which("java", path=environ.get("PATH", "")) or ""
        where = "PATH"
    if not java or not Path(java).is_file():
        raise ConfigError(f"no java executable found (looked in {where}); {_JAVA_HINT}")
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"cannot run {java} -version: {err}; {_JAVA_HINT}") from err
    version = parse_java_version(result.stderr + result.stdout)
    if version is None:
        output = (result.stderr + result.stdout).strip()[:200]
        raise ConfigError(f"cannot read the Java version of {java} from {output!r}; {_JAVA_HINT}")
    if version < MIN_JAVA:
        raise ConfigError(f"{java} is Java {version}; {_JAVA_HINT}")
    return java
