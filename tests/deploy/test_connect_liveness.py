"""Issue 38, item 3: a Spark Connect server killed (SIGKILL) during ``pool3 featurize
--remote`` ends the run within ``spark.remote_timeout_seconds`` with exit 8 naming the server,
staging removed and the lock released; a dedicated server, so the shared one survives."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from clirun import assert_error, cli_env, finish, start
from connect import start_connect_server
from paths import SAMPLE

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_a_killed_connect_server_ends_the_run_with_exit_8(tmp_path, connect_server):
    (tmp_path / "imgs").mkdir()
    for f in sorted(SAMPLE.glob("*.png")):
        shutil.copy(f, tmp_path / "imgs" / f.name)
    server = start_connect_server(tmp_path / "server")
    try:
        env = cli_env()
        args = ["featurize", "--input", "imgs", "--output", "out", "--remote", server.url]
        proc = start(args, tmp_path, env)
        started = time.monotonic()
        while not list(tmp_path.glob(".out.pool3-staging-*")):
            assert proc.poll() is None and time.monotonic() - started < 240
            time.sleep(0.2)
        time.sleep(3)  # inside the write
        pid = server.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        result = finish(proc, started, timeout=120)
        print(f"ended {time.monotonic() - killed:.1f} s after the kill: {result.last_line}")
        assert time.monotonic() - killed < 60
    finally:
        server.stop()
    assert_error(result, "featurize", 8, "Spark Connect server", "stopped answering")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "server"]
    # the same command on a healthy server (the shared one) commits
    again = finish(start([*args[:-1], connect_server.url], tmp_path, cli_env()), time.monotonic())
    assert again.rc == 0, again.stderr[-2000:]
    assert (tmp_path / "out" / "_SUCCESS").exists()
