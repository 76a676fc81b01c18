"""In-process featurizers alternated chunk by chunk: images/s, ratio and feature cosine to
the first variant, worker start-up and memory.

Variants (each in its own process, 2 threads): ``tutorial`` (the frozen graph of ``pool3
export-graph``, one ``sess.run`` per JPEG, as the tutorial's loop), ``tf-float32`` (pool3's
TensorFlow path, batch 4), ``tf-bfloat16`` (batch 16), ``ov-float32``, ``ov-bfloat16``,
``ov-int8`` (OpenVINO, batch 4; int8 calibrated by NNCF on ``calibration`` images);
``NAME@N`` runs at model batch N (batch sweeps). Each is built as a Spark worker builds it,
from the pickled bundle the driver prepared (``prep_s``: IR conversion, int8 calibration).
bfloat16 variants are skipped without native bfloat16 (AVX-512-BF16 / AMX). The worker
probe: a fresh 1-thread process per variant, interpreter start to first batch of 4 done
(``ready_s``), 3 more batches, ``VmHWM`` (``peak_rss_mb``), twice alternated.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.core import Figures, ProcessVariant, Scenario, alternate
from bench.harness.images import write_jpegs

BATCH = {"tutorial": 1, "tf-float32": 4, "tf-bfloat16": 16}


def base(variant: str) -> str:
    return variant.split("@")[0]


def batch_of(variant: str) -> int:
    name, _, n = variant.partition("@")
    return int(n) if n else BATCH.get(name, 4)


def prepare(workdir: Path, variants: list[str], calibration: list[bytes]) -> dict[str, float]:
    """Pickle each variant's bundle into ``workdir``; seconds of driver work per variant."""
    from pool3.images.decode import decode
    from pool3.model import load_bundle
    from pool3.model.featurizer import resize_299
    from pool3.model.openvino_ir import quantize_int8, to_openvino

    seconds, bundle = {}, load_bundle("default")
    for v in dict.fromkeys(base(v) for v in variants):
        t0 = time.perf_counter()
        out = bundle
        if v.startswith("ov-"):
            out = to_openvino(bundle)
        if v == "ov-int8":
            pixels = np.stack([resize_299(decode(j).pixels) for j in calibration])
            shas = [hashlib.sha256(j).hexdigest() for j in calibration]
            out = quantize_int8(out, pixels, sample_sha256=shas)
        (workdir / f"{v}.bundle").write_bytes(pickle.dumps(out))
        seconds[v] = time.perf_counter() - t0
    return seconds


def build(variant: str, workdir: str, threads: int) -> Any:
    """The variant's ``featurize_batch`` owner, built from the shipped bundle."""
    name = base(variant)
    bundle = pickle.loads((Path(workdir) / f"{name}.bundle").read_bytes())
    from pool3.model import featurizer as fz

    if name.startswith("tf-") or name == "tutorial":
        fz.import_tensorflow_in_worker()
    if name == "tutorial":
        from pool3.model.cache import load_npz_bytes
        from pool3.model.graphdef import TutorialSession, export_graphdef

        pb = Path(workdir) / "classify_image_graph_def.pb"
        if not pb.exists():
            export_graphdef(load_npz_bytes(bundle.payload), pb)
        return TutorialSession(pb)
    return fz.featurizer_from_bundle(bundle, threads=threads, precision=name.split("-")[1])


def serve(variant: str, workdir: str, threads: int = 2) -> Any:
    """In the variant's process: JPEG bytes -> features, decode and resize included."""
    from pool3.images.decode import decode
    from pool3.model.featurizer import resize_299

    model, batch = build(variant, workdir, threads), batch_of(variant)

    def run(jpegs: list[bytes]) -> Figures:
        start, out = time.perf_counter(), []
        if base(variant) == "tutorial":
            out = [np.stack([model.features(j) for j in jpegs])]
        for i in range(0, len(jpegs), batch) if not out else ():
            pixels = np.stack([resize_299(decode(j).pixels) for j in jpegs[i : i + batch]])
            out.append(model.featurize_batch(pixels))
        return {
            "images": len(jpegs),
            "seconds": time.perf_counter() - start,
            "features": np.concatenate(out),
        }

    return run


PROBE = """
import sys, time, json
t0 = time.perf_counter()
import numpy as np
from bench.scenarios.featurize import build
f = build(sys.argv[1], sys.argv[2], 1)
x = np.random.default_rng(0).uniform(0, 255, (4, 299, 299, 3)).astype(np.float32)
f.featurize_batch(x)
ready = time.perf_counter() - t0
for _ in range(3):
    f.featurize_batch(x)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({"ready_s": ready, "peak_rss_mb": int(hwm) / 1024}))
"""


def probe(variant: str, workdir: Path) -> Figures:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, variant, str(workdir)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = np.sum(a.astype(np.float64) * b, axis=1)
    return num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    from pool3.model.runtime import this_host

    native_bf16 = bool({"amx_bf16", "avx512_bf16"} & set(this_host().flags))
    names = [v for v in o.variants.split(",") if v and (native_bf16 or "bfloat16" not in v)]
    notes = [] if native_bf16 else ["no native bfloat16 on this CPU: bfloat16 variants skipped"]
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        work = Path(tmp)
        jpegs = [p.read_bytes() for p in write_jpegs(work / "images", o.n, seed=0)]
        rng = np.random.default_rng(42)
        calib = [jpegs[i] for i in sorted(rng.choice(o.n, min(o.calibration, o.n), False))]
        prep = prepare(work, names, calib)
        variants = [
            ProcessVariant(v, f"{__name__}:serve", {"variant": v, "workdir": tmp}) for v in names
        ]
        for v in variants:
            v.setup()
            v.run(jpegs[: o.chunk])  # warm-up batch, outside the measurement
        chunks = [jpegs[i : i + o.chunk] for i in range(0, o.n, o.chunk)]
        try:
            records = alternate(variants, rounds=o.rounds, items=chunks, label=len)
        finally:
            for v in variants:
                v.stop()
        probes = [
            (v, probe(v, work))
            for _ in range(2 if o.probe else 0)
            for v in names
            if "@" not in v and v != "tutorial"
        ]
    feats = {
        v: np.concatenate(
            [r.pop("features") for r in records if r["variant"] == v and r["round"] == 1]
        )
        for v in names
    }
    ref, figures = names[0], {}
    for v in names:
        mine = [r for r in records if r["variant"] == v]
        ips = sum(r["images"] for r in mine) / sum(r["seconds"] for r in mine)
        cos = cosines(feats[v], feats[ref])
        figures |= {f"{v}/images_per_s": ips, f"{v}/batch": batch_of(v),
                    f"{v}/prep_s": prep[base(v)], f"{v}/cosine_min": float(cos.min()),
                    f"{v}/cosine_mean": float(cos.mean()),
                    f"{v}/max_abs_diff": float(np.abs(feats[v] - feats[ref]).max())}  # fmt: skip
        figures[f"{v}/ratio"] = ips / figures[f"{ref}/images_per_s"] if v != ref else 1.0
        if p := [f for name, f in probes if name == v]:
            figures[f"{v}/ready_s"] = statistics.median(f["ready_s"] for f in p)
            figures[f"{v}/peak_rss_mb"] = max(f["peak_rss_mb"] for f in p)
    notes.append(f"ratios, cosines and differences are to {ref}; alternated every {o.chunk} images")
    return figures, records, notes


SCENARIO = Scenario(
    name="featurize",
    doc=__doc__ or "",
    run=run,
    options={"n": 2000, "chunk": 32, "calibration": 300, "rounds": 1, "probe": True,
             "variants": "tf-float32,tf-bfloat16,ov-float32,ov-bfloat16,ov-int8"},
    quick={"n": 16, "chunk": 8, "calibration": 8, "variants": "tf-float32,ov-float32,tutorial"},
)  # fmt: skip
