"""pool3.log.import_tensorflow: TensorFlow's start-up notices stay off the console, anything
else written to stderr during the import still reaches it. Real TensorFlow, in subprocesses
(the import happens once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

IMPORT = "from pool3.log import import_tensorflow; tf = import_tensorflow(); print(tf.__name__)"


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=True,
    )


@pytest.mark.heavy  # imports TensorFlow in a fresh interpreter
def test_real_tensorflow_import_prints_no_notices() -> None:
    plain = _run("import tensorflow")
    assert "oneDNN custom operations are on" in plain.stderr  # what there is to hide
    quiet = _run(IMPORT + "; tf.constant(1.0) + 1")
    assert quiet.stdout.strip() == "tensorflow"
    assert "oneDNN" not in quiet.stderr
    assert "absl::InitializeLog" not in quiet.stderr


def test_other_stderr_output_of_the_import_is_kept(tmp_path: Path) -> None:
    """A stand-in module named tensorflow (first on the path) writes a notice and a real
    warning to file descriptor 2 while it is imported: only the warning comes through."""
    fake = tmp_path / "tensorflow.py"
    fake.write_text(
        "import os\n"
        "os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. Really.\\n')\n"
        "os.write(2, b'E0000 cuda_dnn.cc:8] could not load libcudnn.so.9\\n')\n"
        "os.write(2, b'I0000 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
        "to use available CPU instructions\\n')\n"
        "os.write(2, b'W0000 cpu_feature_guard.cc:9] not all CPU features are used\\n')\n"
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    out = _run(IMPORT, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2")
    assert out.stdout.strip() == "tensorflow"
    assert "could not load libcudnn.so.9" in out.stderr
    assert "not all CPU features are used" in out.stderr  # same file as a notice: kept
    assert "oneDNN" not in out.stderr and "binary is optimized" not in out.stderr
    everything = _run(IMPORT, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="0")
    assert "oneDNN custom operations are on" in everything.stderr


def test_what_an_aborting_import_printed_is_shown(tmp_path: Path) -> None:
    """TensorFlow's fatal CPU check prints a line and aborts the process in the import: the
    line reaches the console (it is forwarded as it comes, not after the import)."""
    (tmp_path / "tensorflow.py").write_text(
        "import os, time\n"
        "os.write(2, b'F0000 cpu_feature_guard.cc:1] The TensorFlow library was compiled to "
        "use AVX instructions, but these aren\\'t available on your machine.\\n')\n"
        "time.sleep(0.5)\n"
        "os.abort()\n"
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", IMPORT],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert out.returncode != 0
    assert "compiled to use AVX instructions" in out.stderr


# py4j's GatewayClient against a peer that drops the first connection unanswered (as the
# driver JVM does to a command in flight while its gateway shuts down) and answers the retry.
PY4J_RETRY = """
import logging, socket, threading
from pool3.log import setup_logging
setup_logging()
server = socket.create_server(("127.0.0.1", 0))
def serve():
    first = True
    while True:
        conn, _ = server.accept()
        stream = conn.makefile("rb")
        stream.readline()
        if first:
            first = False
            stream.close()
            conn.close()
            continue
        while stream.readline().strip() != b"e":
            pass
        conn.sendall(b"!yv\\n")
threading.Thread(target=serve, daemon=True).start()
from py4j.java_gateway import GatewayClient, GatewayParameters
client = GatewayClient(gateway_parameters=GatewayParameters(port=server.getsockname()[1]))
print(client.send_command("m\\nd\\no7\\ne\\n"))
logging.info("a root INFO record of our own")
"""


def test_py4j_retry_notice_prints_no_traceback() -> None:
    """py4j logs "Exception while sending command." with a traceback through the root logger
    before retrying; the retry is what counts, so the notice stays off stderr (a CLI error
    test once failed on it: a garbage-collection command raced the gateway's shutdown)."""
    result = _run(PY4J_RETRY)
    assert result.stdout.strip() == "yv"  # the retry got the answer
    assert "Traceback" not in result.stderr, result.stderr
    assert "Exception while sending command" not in result.stderr, result.stderr
    assert "INFO root: a root INFO record of our own" in result.stderr
