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
