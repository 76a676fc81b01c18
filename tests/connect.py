"""A real Spark Connect server on 127.0.0.1 for tests, started from the installed pyspark.

``<pyspark>/sbin/start-connect-server.sh`` runs the server as a daemon (``local[2]``, the
project's Python for its workers, its logs and pid file in a temporary directory); it is
stopped by its pid file (SIGTERM, then SIGKILL of its process group) when the session ends, a
failed test included; an ``atexit`` guard covers an interrupted session. The server's web UI
listens on a free port too: :meth:`ConnectServer.running_jobs` asks its REST API what runs.

Registered by ``pytest_plugins`` in ``tests/conftest.py``, which marks the tests that use it
``connect`` and ``spark`` (``FIXTURE_MARKERS``). Clients run in subprocesses (the ``pool3``
CLI, ``tests/apps``): a Connect session in the test process would switch pyspark's API to
Connect mode for the Classic ``spark`` fixture too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
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
from typing import Any

import pytest

from cluster import HOST, free_port, log_tail, pyspark_home

START_TIMEOUT_S = 90.0


@dataclass
class ConnectServer:
    """A running Spark Connect server: ``url`` (``sc://127.0.0.1:PORT``) for ``--remote``."""

    url: str
    port: int
    ui_url: str
    pid_dir: Path
    log_dir: Path

    def pid(self) -> int | None:
        files = list(self.pid_dir.glob("*.pid"))
        return int(files[0].read_text().strip()) if files else None

    def logs(self) -> str:
        return "\n".join(log_tail(p) for p in sorted(self.log_dir.glob("*.out")))

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.ui_url + path, timeout=5) as resp:
            return json.load(resp)

    def running_jobs(self) -> list[dict[str, Any]]:
        """The server's Spark jobs that run now (its REST API)."""
        apps = self._get("/api/v1/applications")
        jobs: list[dict[str, Any]] = []
        for app in apps:
            jobs += self._get(f"/api/v1/applications/{app['id']}/jobs?status=running")
        return jobs

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for file in self.pid_dir.glob("*.pid"):
            file.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def start_connect_server(base_dir: Path, timeout_s: float = START_TIMEOUT_S) -> ConnectServer:
    """Start a Spark Connect server (``local[2]``) and return once its port accepts."""
    home = pyspark_home()
    port, ui_port = free_port(), free_port()
    server = ConnectServer(
        url=f"sc://{HOST}:{port}",
        port=port,
        ui_url=f"http://{HOST}:{ui_port}",
        pid_dir=base_dir / "pid",
        log_dir=base_dir / "log",
    )
    conf_dir = base_dir / "conf"
    for folder in (server.pid_dir, server.log_dir, conf_dir):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_CONF_DIR": str(conf_dir),  # none of the host's spark-defaults.conf
        "SPARK_PID_DIR": str(server.pid_dir),
        "SPARK_LOG_DIR": str(server.log_dir),
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_IDENT_STRING": f"pool3-tests-{port}",
    }
    confs = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.binding.address": HOST,
        "spark.ui.port": str(ui_port),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
        "spark.driver.memory": "2g",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        # what pool3's own session sets (static: a client cannot; see README)
        "spark.python.worker.reuse": "true",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
    }
    args = [str(home / "sbin" / "start-connect-server.sh"), "--master", "local[2]"]
    for key, value in confs.items():
        args += ["--conf", f"{key}={value}"]
    subprocess.run(args, env=env, check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = server.pid()
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"the Spark Connect server exited while starting\n{server.logs()}")
        if _listening(port):
            return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"no Spark Connect server on port {port} after {timeout_s:.0f} s\n"
                       f"{server.logs()}")  # fmt: skip


@pytest.fixture(scope="session")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectServer]:
    """A running Spark Connect server for the whole session (see module doc)."""
    started = time.monotonic()
    try:
        server = start_connect_server(tmp_path_factory.mktemp("spark-connect"))
    except (RuntimeError, subprocess.SubprocessError) as err:
        pytest.fail(str(err), pytrace=False)
    atexit.register(server.stop)
    print(f"Spark Connect server up in {time.monotonic() - started:.1f} s at {server.url}")
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)
