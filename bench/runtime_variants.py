"""Runtime x precision variants of the featurizer, each in its own process (bench/runtime_bench).

The parent (the "driver") prepares each variant's bundle once: the shipped weights for
TensorFlow, the IR for OpenVINO, the NNCF int8 IR calibrated on a seeded sample of the
benchmark's own JPEGs, and pickles it to ``<workdir>/<variant>.bundle``. Each variant process
then does what a Spark worker does: unpickle, build with :func:`pool3.model.featurizer.
featurizer_from_bundle`, decode + resize + featurize JPEG bytes in batches.

Variants: ``tf-float32`` (pool3's TensorFlow path, batch 4), ``tf-bfloat16`` (TF with
oneDNN's bfloat16 rewrite, batch 16), ``ov-float32``, ``ov-bfloat16``, ``ov-int8``
(OpenVINO, batch 4). ``<variant>@<n>`` runs a variant at model batch ``n`` (batch sweeps).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import pickle
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

ALL = ("tf-float32", "tf-bfloat16", "ov-float32", "ov-bfloat16", "ov-int8")
BATCH = {"tf-float32": 4, "tf-bfloat16": 16, "ov-float32": 4, "ov-bfloat16": 4, "ov-int8": 4}


def base(variant: str) -> str:
    """``ov-bfloat16@16`` -> ``ov-bfloat16``."""
    return variant.split("@")[0]


def batch_of(variant: str) -> int:
    name, _, n = variant.partition("@")
    return int(n) if n else BATCH[name]


def prepare_bundles(workdir: Path, variants: tuple[str, ...], calibration: list[bytes]) -> dict:
    """Pickle each variant's bundle into ``workdir``; seconds of driver work per variant."""
    from pool3.images.decode import decode
    from pool3.model import load_bundle
    from pool3.model.featurizer import resize_299
    from pool3.model.openvino_ir import quantize_int8, to_openvino

    seconds = {}
    bundle = load_bundle("default")
    for v in dict.fromkeys(base(v) for v in variants):
        t0 = time.perf_counter()
        if v.startswith("tf-"):
            out = bundle
        else:
            out = to_openvino(bundle)
            if v == "ov-int8":
                pixels = np.stack([resize_299(decode(j).pixels) for j in calibration])
                shas = [hashlib.sha256(j).hexdigest() for j in calibration]
                out = quantize_int8(out, pixels, sample_sha256=shas)
        (workdir / f"{v}.bundle").write_bytes(pickle.dumps(out))
        seconds[v] = time.perf_counter() - t0
    return seconds


def build(variant: str, workdir: str, threads: int) -> Any:
    """The variant's featurizer, as a Spark worker builds it from the shipped bytes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    variant = base(variant)
    bundle = pickle.loads((Path(workdir) / f"{variant}.bundle").read_bytes())
    if variant.startswith("tf-"):
        from pool3.model.featurizer import import_tensorflow_in_worker

        import_tensorflow_in_worker()
    from pool3.model.featurizer import featurizer_from_bundle

    return featurizer_from_bundle(bundle, threads=threads, precision=variant.split("-")[1])


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``: reset by exec, unlike ``ru_maxrss``,
    which a child started by a large parent inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _serve(conn: Connection, variant: str, workdir: str, threads: int) -> None:
    from pool3.images.decode import decode
    from pool3.model.featurizer import resize_299

    featurizer = build(variant, workdir, threads)
    batch = batch_of(variant)
    conn.send(("ready",))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        start, out = time.perf_counter(), []
        jpegs = msg[1]
        for i in range(0, len(jpegs), batch):
            pixels = np.stack([resize_299(decode(j).pixels) for j in jpegs[i : i + batch]])
            out.append(featurizer.featurize_batch(pixels))
        conn.send(("done", np.concatenate(out), time.perf_counter() - start))


@dataclass
class Variant:
    name: str
    process: Any
    conn: Connection

    @classmethod
    def start(cls, name: str, workdir: str, threads: int = 2) -> Variant:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, name, workdir, threads), daemon=True)
        proc.start()
        assert parent.recv()[0] == "ready"
        return cls(name, proc, parent)

    def run(self, jpegs: list[bytes]) -> tuple[np.ndarray, float]:
        self.conn.send(("jpegs", jpegs))
        tag, feats, seconds = self.conn.recv()
        assert tag == "done"
        return feats, seconds

    def stop(self) -> None:
        self.conn.send(("stop",))
        self.process.join(timeout=30)


WORKER_PROBE = """
import sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[3])
import numpy as np
from runtime_variants import build, peak_rss_mb
f = build(sys.argv[1], sys.argv[2], 1)
x = np.random.default_rng(0).uniform(0, 255, (4, 299, 299, 3)).astype(np.float32)
f.featurize_batch(x)
ready = time.perf_counter() - t0
for _ in range(3):
    f.featurize_batch(x)
print(json.dumps({"ready_s": ready, "peak_rss_mb": peak_rss_mb(),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def worker_probe(variant: str, workdir: Path) -> dict[str, Any]:
    """A fresh process as a Spark worker: interpreter start -> model built from the shipped
    bytes -> first batch of 4 done (``ready_s``), then 3 more batches (peak RSS), 1 thread."""
    import json
    import subprocess

    bench = str(Path(__file__).resolve().parent)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE, variant, str(workdir), bench],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    doc["wall_s"] = time.perf_counter() - t0
    return doc
