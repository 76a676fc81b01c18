"""pool3.log.import_tensorflow: TensorFlow's start-up notices stay off the console, anything
else written to stderr during the import still reaches it. Real TensorFlow, in subprocesses
(the import happens once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    out = _run(IMPORT, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2")
    assert out.stdout.strip() == "tensorflow"
    assert "could not load libcudnn.so.9" in out.stderr
    assert "oneDNN" not in out.stderr
    everything = _run(IMPORT, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="0")
    assert "oneDNN custom operations are on" in everything.stderr
