"""Running the ``pool3`` command as a user does: a subprocess, its exit code, its stderr.

Shared by the CLI, fault and pipeline tests; :func:`fresh_python` by the tests of a driver
JVM pool3 starts itself (session, JVM archive).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SPARK_LOG_MARK = "pool3.session"  # logged once the Spark session is up


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


SPARK_EXTRA = {
    # Small, quiet test sessions, set through a user's config channel (env): no UI, loopback
    # only, and a JVM that starts faster (C1 only: these drivers live for seconds).
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
}


def cli_env(**extra_conf: str) -> dict[str, str]:
    """The caller's environment without PYTHONPATH or POOL3_* settings, Spark on 127.0.0.1.

    ``extra_conf`` adds Spark confs (``spark.extra``), passed as ``POOL3_SPARK__EXTRA``, a
    TOML inline table.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("POOL3_")}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    confs = {**SPARK_EXTRA, **extra_conf}
    env["POOL3_SPARK__EXTRA"] = "{" + ", ".join(f'"{k}" = "{v}"' for k, v in confs.items()) + "}"
    return env


def command(*args: str, program: Path | None = None) -> list[str]:
    """``python -m pool3.cli ARGS``, or ``python PROGRAM ARGS`` (a test launcher, tests/apps)."""
    if program is not None:
        return [sys.executable, str(program), *args]
    return [sys.executable, "-m", "pool3.cli", *args]


def start(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    *,
    program: Path | None = None,
) -> subprocess.Popen:
    """Start ``pool3 ARGS`` in its own process group (its JVM and Python workers join it)."""
    return subprocess.Popen(
        command(*args, program=program),
        cwd=cwd,
        env=cli_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of ``proc``'s process group (nothing, after a normal exit)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def finish(proc: subprocess.Popen, started: float, timeout: float = 300) -> Result:
    """Wait for ``proc``; on timeout kill its whole group, so no JVM outlives the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return Result(proc.returncode, out, err, time.monotonic() - started)


def run(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    program: Path | None = None,
) -> Result:
    started = time.monotonic()
    return finish(start(args, cwd, env, program=program), started, timeout)


def fresh_python(
    script: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> str:
    """``python -c SCRIPT ARGS`` in a fresh interpreter that starts its own driver JVM (this
    environment less ``PYSPARK_GATEWAY_PORT``, so no gateway is inherited, and ``env`` on
    top); its stdout, once it has exited 0."""
    full = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    full.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_error(result: Result, cmd: str, code: int, *mentions: str) -> None:
    assert result.rc == code, (result.rc, result.stderr[-2000:])
    assert result.last_line.startswith(f"pool3 {cmd}: error: "), result.stderr[-2000:]
    for word in mentions:
        assert word in result.last_line, (word, result.last_line)
    assert "Traceback" not in result.stderr
