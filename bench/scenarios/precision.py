"""What each precision costs in accuracy: Fashion-MNIST, one split, pool3's own training.

``per_class`` images per class of Fashion-MNIST's train split (Debian's
``dataset-fashion-mnist``) featurized in-process with OpenVINO float32, bfloat16 (native
CPUs only) and int8 under NNCF settings (``variants``: ``int8`` = pool3's, first
convolution kept float; ``int8-all``, ``int8-mixed``, ``int8-last-block``,
``int8-full-bias``), each int8 calibrated on ``calibration`` images chosen by pool3's rule
(smallest ``sha256(42:path)``); each trained with pool3's rules, content split (the same
held-out images for all) and the tutorial's ``LinearSVC``. Figures per variant:
``accuracy`` (%), ``changed`` (% of test predictions that differ from float32's),
``cosine_min``/``cosine_mean`` to float32, ``images_per_s``, ``calibration_s``.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.harness.core import Figures, Scenario
from bench.scenarios.featurize import cosines

INT8 = {  # changes to pool3's INT8_SETTINGS
    "int8": {},
    "int8-all": {"keep_float": []},
    "int8-mixed": {"preset": "mixed", "keep_float": []},
    "int8-last-block": {"keep_float": ["first_conv", "last_block"]},
    "int8-full-bias": {"fast_bias_correction": False, "keep_float": []},
}


def features(name: str, ir: Any, blobs: list[bytes], calib: list[int], shas: list[str]) -> Figures:
    """The variant's features of every image, its images/s and its int8 calibration time."""
    from pool3.images.decode import decode
    from pool3.model.featurizer import featurizer_from_bundle, resize_299
    from pool3.model.openvino_ir import INT8_SETTINGS, quantize_int8

    t0 = time.perf_counter()
    bundle = ir
    if name in INT8:
        pixels = np.stack([resize_299(decode(blobs[i]).pixels) for i in calib])
        settings = {**INT8_SETTINGS, **INT8[name]}
        sample = [shas[i] for i in calib]
        bundle = quantize_int8(ir, pixels, sample_sha256=sample, settings=settings)
    model = featurizer_from_bundle(bundle, threads=2, precision=name.split("-")[0])
    t1 = time.perf_counter()
    batches = [blobs[i : i + 8] for i in range(0, len(blobs), 8)]
    feats = np.concatenate(
        [
            model.featurize_batch(np.stack([resize_299(decode(b).pixels) for b in batch]))
            for batch in batches
        ]
    )
    rate = len(blobs) / (time.perf_counter() - t1)
    return {"feats": feats, "images_per_s": rate, "calibration_s": t1 - t0}


def accuracy(
    spark: Any, paths: list[Path], shas: list[str], feats: np.ndarray, model: str
) -> Figures:
    """pool3's rules, content split and the tutorial's LinearSVC on these features."""
    from pool3.config import TrainParams
    from pool3.training.solvers.driver import train_and_evaluate
    from pool3.training.table.rules import prepare

    labels = [q.name.rsplit("_", 1)[0] for q in paths]
    frame = pd.DataFrame({"path": list(map(str, paths)), "label": labels, "sha256": shas,
                          "features": list(feats), "model": model, "error": None})  # fmt: skip
    schema = "path string, label string, sha256 string, features array<float>, model string, "
    schema += "error string"
    params = TrainParams(solver="liblinear")
    res = train_and_evaluate(prepare(spark.createDataFrame(frame, schema), params), params)
    pred = dict(zip(map(str, res.paths_test), map(str, res.y_pred), strict=True))
    return {"pred": pred, "accuracy": 100 * res.metrics["accuracy"]}


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    from pool3.config import load_config
    from pool3.model import load_bundle
    from pool3.model.openvino_ir import to_openvino
    from pool3.model.runtime import this_host
    from pool3.session import build_session
    from pool3_tools.datasets import write_fashion_mnist

    names = ["float32", *(v for v in o.variants.split(",") if v in INT8)]
    if {"amx_bf16", "avx512_bf16"} & set(this_host().flags):
        names.insert(1, "bfloat16")
    overrides = {"spark.master": "local[2]", "spark.log_level": "ERROR"}
    spark = build_session(load_config(overrides=overrides, env={}))
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        write_fashion_mnist(Path(tmp, "images"), per_class=o.per_class)
        paths = sorted(Path(tmp, "images").glob("*.png"))
        blobs = [q.read_bytes() for q in paths]
        shas = [hashlib.sha256(b).hexdigest() for b in blobs]
        key = lambda i: hashlib.sha256(f"42:{paths[i]}".encode()).hexdigest()  # noqa: E731
        calib = sorted(range(len(paths)), key=key)[: o.calibration]
        ir = to_openvino(load_bundle("default"))
        for name in names:
            results[name] = features(name, ir, blobs, calib, shas)
            results[name] |= accuracy(spark, paths, shas, results[name]["feats"], ir.fingerprint)
    spark.stop()
    ref, figures = results["float32"], {}
    for name, r in results.items():
        cos = cosines(r["feats"], ref["feats"])
        changed = np.mean([r["pred"][k] != v for k, v in ref["pred"].items()])
        figures |= {f"{name}/{k}": v for k, v in r.items() if k not in ("feats", "pred")}
        figures |= {
            f"{name}/changed": 100 * float(changed),
            f"{name}/cosine_min": float(cos.min()),
            f"{name}/cosine_mean": float(cos.mean()),
        }
    return figures, [], [f"{len(ref['pred'])} test images, the same for every variant"]


SCENARIO = Scenario(
    name="precision",
    doc=__doc__ or "",
    run=run,
    options={
        "per_class": 200,
        "calibration": 300,
        "rounds": 1,
        "variants": "int8,int8-all,int8-mixed,int8-last-block,int8-full-bias",
    },
    quick={"per_class": 4, "calibration": 8, "variants": "int8"},
)
