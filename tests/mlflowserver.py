"""A real MLflow tracking server for the tests that track runs (pytest plugin, see conftest).

``mlflow server`` on loopback with a SQLite backend store and a local artifact root under the
test run's temporary folder (not the deprecated file store), serving artifacts itself as a
team's server does; started once per test run when a test asks for ``mlflow_server`` (marked
``mlflow`` by ``tests/conftest.py``) and stopped by its pid.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class MlflowServer:
    uri: str
    process: subprocess.Popen
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the server's process group (uvicorn and its worker), then SIGKILL."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_mlflow_server(base: Path, timeout_s: float = START_TIMEOUT_S) -> MlflowServer:
    """Start ``mlflow server`` (this interpreter's MLflow) and return once ``/health`` answers."""
    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    log = base / "server.log"
    args = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host", HOST,
        "--port", str(port),
        "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
        "--artifacts-destination", str(base / "artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # no job runner: it starts ~8 worker processes of ~250 MB for jobs pool3 never sends
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=base, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = MlflowServer(uri=f"http://{HOST}:{port}", process=process, log=log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited while starting\n{server.logs()}")
        if server.healthy():
            return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"no MLflow server at {server.uri} after {timeout_s:.0f} s\n{server.logs()}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A running MLflow tracking server for the whole test run (see the module docstring)."""
    started = time.monotonic()
    try:
        server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    except (RuntimeError, OSError) as err:
        pytest.fail(str(err), pytrace=False)
    atexit.register(server.stop)
    print(f"MLflow server up in {time.monotonic() - started:.1f} s at {server.uri}")
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)
