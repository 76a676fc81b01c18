"""A real Spark standalone cluster (one master, one worker) on 127.0.0.1 for tests.

The pyspark wheel has no ``sbin/start-master.sh``, so both daemons are started with
``<pyspark>/bin/spark-class`` in their own process groups, with logs in a temporary
directory. The session-scoped fixture :func:`standalone_cluster` waits until the
worker is ALIVE in the master's ``/json/`` view and stops both daemons (with any
executors they started) when the session ends, a failed test included; an
``atexit`` guard covers an interrupted session.

It is registered once for the whole run by
``pytest_plugins = ["cluster"]`` in ``tests/conftest.py``, which marks the tests that use it
``cluster`` and ``spark`` (``FIXTURE_MARKERS``).
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
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def pyspark_home() -> Path:
    """Directory of the installed pyspark package (it holds ``bin/`` and ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, n_lines: int = 40) -> str:
    """The last ``n_lines`` lines of a log file, or a note that it is missing."""
    if not path.is_file():
        return f"<{path} missing>"
    lines = path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-n_lines:])


@dataclass
class StandaloneCluster:
    """Handle on a running master and worker.

    Attributes
    ----------
    master_url : str
        ``spark://127.0.0.1:<port>``, for ``--master``.
    ui_url : str
        The master's web UI, ``http://127.0.0.1:<port>``; ``ui_url + "/json/"`` is its state.
    log_dir : Path
        Holds ``master.log``, ``worker.log`` and the worker's ``work/`` directory.
    """

    master_url: str
    ui_url: str
    log_dir: Path
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def master_state(self) -> dict[str, Any]:
        """The master's JSON view: ``workers``, ``activeapps``, ``completedapps``, ..."""
        with urllib.request.urlopen(self.ui_url + "/json/", timeout=5) as resp:
            state: dict[str, Any] = json.load(resp)
        return state

    def logs(self) -> str:
        """Tails of the master and worker logs, for failure messages."""
        return "\n".join(
            f"--- {name} ---\n{log_tail(self.log_dir / name)}"
            for name in ("master.log", "worker.log")
        )

    def stop(self) -> None:
        """SIGTERM each daemon's process group, then SIGKILL what is left; idempotent."""
        for proc in reversed(self._procs):
            _stop_group(proc)
        self._procs.clear()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)
    # Executors and their Python workers inherit the worker's process group: whatever
    # of it outlived the leader, or the leader itself if it ignored SIGTERM, goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=STOP_TIMEOUT_S)


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _wait_for_worker(cluster: StandaloneCluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in cluster._procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{proc.args!r} exited with code {proc.returncode} while the cluster "
                    f"was starting\n{cluster.logs()}"
                )
        try:
            workers = cluster.master_state().get("workers", [])
        except (urllib.error.URLError, OSError, json.JSONDecodeError):
            workers = []
        if any(w.get("state") == "ALIVE" for w in workers):
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"no ALIVE worker at {cluster.ui_url}/json/ after {timeout_s:.0f} s\n{cluster.logs()}"
    )


def start_cluster(
    base_dir: Path, *, cores: int = 2, memory: str = "4g", timeout_s: float = START_TIMEOUT_S
) -> StandaloneCluster:
    """Start a master and one worker; return once the worker is registered.

    Parameters
    ----------
    base_dir : Path
        Empty directory for the logs, an empty ``SPARK_CONF_DIR`` and the worker's work dir.
    cores, memory : int, str
        What the worker offers to executors (``--cores``, ``--memory``).
    timeout_s : float
        How long to wait for the worker to be ALIVE.

    Raises
    ------
    RuntimeError
        If a daemon exits or the worker is not ALIVE in time; the message holds the log tails.
        Both daemons are stopped before it is raised.
    """
    spark_class = str(pyspark_home() / "bin" / "spark-class")
    port, ui_port, worker_ui_port = free_port(), free_port(), free_port()
    conf_dir = base_dir / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": HOST,
        "SPARK_MASTER_HOST": HOST,
        "PYSPARK_PYTHON": sys.executable,
        # An empty conf dir: no spark-defaults.conf or spark-env.sh of the host applies.
        "SPARK_CONF_DIR": str(conf_dir),
    }
    cluster = StandaloneCluster(
        master_url=f"spark://{HOST}:{port}", ui_url=f"http://{HOST}:{ui_port}", log_dir=base_dir
    )
    master_args = ["--host", HOST, "--port", str(port), "--webui-port", str(ui_port)]
    worker_args = [cluster.master_url, "--host", HOST, "--cores", str(cores)]
    worker_args += ["--memory", memory, "--webui-port", str(worker_ui_port)]
    worker_args += ["--work-dir", str(base_dir / "work")]
    try:
        cluster._procs.append(
            _spawn(
                [spark_class, "org.apache.spark.deploy.master.Master", *master_args],
                base_dir / "master.log",
                env,
            )
        )
        cluster._procs.append(
            _spawn(
                [spark_class, "org.apache.spark.deploy.worker.Worker", *worker_args],
                base_dir / "worker.log",
                env,
            )
        )
        _wait_for_worker(cluster, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A running standalone master and worker for the whole session (see module doc)."""
    base_dir = tmp_path_factory.mktemp("spark-standalone")
    started = time.monotonic()
    try:
        cluster = start_cluster(base_dir)
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    atexit.register(cluster.stop)
    print(f"standalone cluster up in {time.monotonic() - started:.1f} s at {cluster.master_url}")
    try:
        yield cluster
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)
