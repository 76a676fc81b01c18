"""What each precision costs in accuracy: Fashion-MNIST, one split, pool3's own training.

    python bench/precision_accuracy.py [--per-class 200] [--calibration 300] [--no-write]

Writes ``--per-class`` images per class of Fashion-MNIST's train split (Debian's
``dataset-fashion-mnist``) as PNGs, featurizes them in-process with OpenVINO float32,
bfloat16 (where the CPU has it natively) and int8 under several NNCF settings (each
calibrated on ``--calibration`` images of the set, chosen by pool3's rule, the smallest
``sha256(42:path)``, over the local paths, where pool3 hashes the listing's ``file:`` URIs), writes
each as a pool3 feature table and trains the tutorial's ``LinearSVC`` through
pool3's own rules, split (``content``: the same held-out images for every variant, as the
split hashes the image contents) and solver on a local Spark session. Reports accuracy,
the share of test predictions that differ from float32's, and feature cosine to float32.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import append_results, calibrate, cosines, machine_info, md_table

INT8_VARIANTS: dict[str, dict[str, Any]] = {  # changes to pool3's INT8_SETTINGS
    "int8 all layers": {"keep_float": []},
    "int8 mixed preset": {"preset": "mixed", "keep_float": []},
    "int8 first conv kept float (pool3's)": {},
    "int8 first conv + mixed_10 kept float": {"keep_float": ["first_conv", "last_block"]},
    "int8 full bias correction": {"fast_bias_correction": False, "keep_float": []},
}


def featurize_all(featurizer: Any, blobs: list[bytes], batch: int = 8) -> np.ndarray:
    from pool3.images.decode import decode
    from pool3.model.featurizer import resize_299

    out = []
    for i in range(0, len(blobs), batch):
        px = np.stack([resize_299(decode(b).pixels) for b in blobs[i : i + batch]])
        out.append(featurizer.featurize_batch(px))
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--calibration", type=int, default=300)
    p.add_argument("--variants", default="all", help="'all' or comma-separated int8 names")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)

    from pool3.config import TrainParams, load_config
    from pool3.images.decode import decode
    from pool3.model import load_bundle
    from pool3.model.featurizer import featurizer_from_bundle, resize_299
    from pool3.model.openvino_ir import INT8_SETTINGS, quantize_int8, to_openvino
    from pool3.session import build_session
    from pool3.training.solvers.sklearn_solver import train_and_evaluate
    from pool3.training.table.rules import prepare
    from pool3_tools.datasets import write_fashion_mnist

    info = machine_info()
    native_bf16 = bool({"amx_bf16", "avx512_bf16"} & set(info.simd))
    before = calibrate()
    with tempfile.TemporaryDirectory(prefix="pool3-acc-") as tmp:
        work = Path(tmp)
        write_fashion_mnist(work / "images", per_class=args.per_class)
        paths = sorted((work / "images").glob("*.png"))
        blobs = [q.read_bytes() for q in paths]
        shas = [hashlib.sha256(b).hexdigest() for b in blobs]
        labels = [q.name.rsplit("_", 1)[0] for q in paths]
        # the calibration sample: pool3's rule (smallest sha256(seed:path)), seed 42
        order = sorted(
            range(len(paths)), key=lambda i: hashlib.sha256(f"42:{paths[i]}".encode()).hexdigest()
        )
        calib = order[: args.calibration]
        calib_px = np.stack([resize_299(decode(blobs[i]).pixels) for i in calib])
        ir = to_openvino(load_bundle("default"))
        variants: dict[str, tuple[Any, float]] = {}
        variants["float32"] = (featurizer_from_bundle(ir, threads=2, precision="float32"), 0.0)
        if native_bf16:
            variants["bfloat16"] = (
                featurizer_from_bundle(ir, threads=2, precision="bfloat16"),
                0.0,
            )
        chosen = (
            INT8_VARIANTS
            if args.variants == "all"
            else {k: v for k, v in INT8_VARIANTS.items() if k in args.variants.split(",")}
        )
        for name, change in chosen.items():
            t0 = time.perf_counter()
            q = quantize_int8(
                ir,
                calib_px,
                sample_sha256=[shas[i] for i in calib],
                settings={**INT8_SETTINGS, **change},
            )
            variants[name] = (
                featurizer_from_bundle(q, threads=2, precision="int8"),
                time.perf_counter() - t0,
            )
        config = load_config(
            overrides={
                "spark.master": "local[2]",
                "spark.log_level": "ERROR",
                "spark.extra": {"spark.ui.enabled": "false"},
            },
            env={},
        )
        spark = build_session(config)
        params = TrainParams()
        results: dict[str, dict[str, Any]] = {}
        for name, (featurizer, calib_s) in variants.items():
            t0 = time.perf_counter()
            feats = featurize_all(featurizer, blobs)
            seconds = time.perf_counter() - t0
            frame = pd.DataFrame(
                {
                    "path": [str(q) for q in paths],
                    "label": labels,
                    "sha256": shas,
                    "features": list(feats),
                    "model": ir.fingerprint,
                    "error": None,
                }
            )
            table = spark.createDataFrame(
                frame,
                "path string, label string, sha256 string, "
                "features array<float>, model string, error string",
            )
            res = train_and_evaluate(prepare(table, params), params)
            results[name] = {
                "feats": feats,
                "acc": res.metrics["accuracy"],
                "ips": len(blobs) / seconds,
                "pred": dict(zip(map(str, res.paths_test), map(str, res.y_pred), strict=True)),
                "calib_s": calib_s,
            }
            print(
                f"{name}: accuracy {res.metrics['accuracy']:.4f}, {len(blobs) / seconds:.1f} img/s",
                flush=True,
            )
        spark.stop()
    ref = results["float32"]
    rows = []
    for name, r in results.items():
        cos = cosines(r["feats"], ref["feats"])
        changed = np.mean([r["pred"][k] != v for k, v in ref["pred"].items()])
        rows.append(
            [
                name,
                f"{100 * r['acc']:.2f}",
                f"{100 * (r['acc'] - ref['acc']):+.2f}",
                f"{100 * changed:.1f}",
                f"{cos.min():.4f} / {cos.mean():.4f}",
                r["ips"],
                r["calib_s"],
            ]
        )
    after = calibrate()
    n_test = len(ref["pred"])
    append_results(
        "Precision vs accuracy (bench/precision_accuracy.py)",
        before=before,
        after=after,
        sections=[
            (
                f"Fashion-MNIST, {len(paths)} images ({n_test} held out by pool3's content split), "
                f"OpenVINO in-process, int8 calibrated on {args.calibration} of them",
                md_table(
                    [
                        "features",
                        "accuracy %",
                        "vs float32",
                        "test predictions changed %",
                        "cosine to float32 (min / mean)",
                        "images/s",
                        "calibration s",
                    ],
                    rows,
                ),
            )
        ],
        notes=["the same held-out images for every row (the split hashes image contents)"],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
