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


def killed_mid_run(tmp_path, args: list[str], inside: str, command: str):
    """Run ``pool3 ARGS --remote <a dedicated server>``, SIGKILL the server once ``inside``
    (a glob under ``tmp_path``) exists, and return the run's result: exit 8 naming the server
    within 60 s of the kill."""
    server = start_connect_server(tmp_path / f"server-{command}")
    try:
        proc = start([*args, "--remote", server.url], tmp_path, cli_env())
        started = time.monotonic()
        while not list(tmp_path.glob(inside)):
            if proc.poll() is not None:
                err = finish(proc, started).stderr
                pytest.fail(f"ended before {inside}: " + " | ".join(err.splitlines()[-6:]))
            assert time.monotonic() - started < 240
            time.sleep(0.1)
        pid = server.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        result = finish(proc, started, timeout=120)
        print(f"{command}: ended {time.monotonic() - killed:.1f} s after the kill")
        assert time.monotonic() - killed < 60
    finally:
        server.stop()
        shutil.rmtree(tmp_path / f"server-{command}", ignore_errors=True)
    assert_error(result, command, 8, "Spark Connect server", "stopped answering")
    return result


def test_a_killed_connect_server_ends_featurize_and_train_with_exit_8(tmp_path, connect_server):
    """featurize killed inside its write, then train --solver spark killed inside its fit
    (its scratch folder exists): each exit 8 within 60 s, nothing committed, no staging or
    lock, and the same command on a healthy server (the shared one) commits."""
    (tmp_path / "imgs").mkdir()
    for f in sorted(SAMPLE.glob("*.png")):
        shutil.copy(f, tmp_path / "imgs" / f.name)
    featurize = ["featurize", "--input", "imgs", "--output", "out"]
    killed_mid_run(tmp_path, featurize, ".out.pool3-staging-*/_temporary", "featurize")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]
    again = finish(start([*featurize, "--remote", connect_server.url], tmp_path, cli_env()), 0)
    assert again.rc == 0, again.stderr[-2000:]
    assert (tmp_path / "out" / "_SUCCESS").exists()

    train = ["train", "--features", "out", "--output", "model", "--solver", "spark"]
    killed_mid_run(tmp_path, train, ".model.pool3-staging-*/_pool3_scratch", "train")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "out"]
    again = finish(start([*train, "--remote", connect_server.url], tmp_path, cli_env()), 0)
    assert again.rc == 0, again.stderr[-2000:]
    assert (tmp_path / "model" / "_SUCCESS").exists()
