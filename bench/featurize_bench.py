"""Featurization throughput: the tutorial's method vs pool3 in one process vs the Spark job.

    python bench/featurize_bench.py [--n 2000] [--repeats 2] [--quick] [--no-write]

1. Generates ``--n`` JPEGs cut from real photos (90 % 100x100, 10 % 500x500; fixed seed).
2. In-process variants, each in its own process, alternated chunk by chunk on the same
   bytes (A B C, B C A, C A B, ...): (a) the tutorial's one ``sess.run`` per JPEG, (b)
   pool3's batched featurizer in float32 and in bfloat16.
3. bfloat16 fidelity: cosine to float32 on every generated image, the 4 golden PNGs in
   tests/data/golden and the two full sample photos.
4. Start-up probe: a fresh process, session + model to the first featurized batch, twice
   with the workers' warm-up (featurize.warm_up) and twice without, alternated.
5. ``--repeats`` times: (c) ``pool3 featurize --conf local`` (``local[*]``) as a fresh
   process, end to end, then (b) float32 again on all images, so each Spark figure has a
   ceiling measured next to it.
Prints the tables and appends them to bench/RESULTS.md (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import BENCH_DIR, calibrate, cosines, load1
from featurize_report import report
from images_gen import sample_photos, write_jpegs
from spark_cli import CliRun, featurize_cli
from variants import VARIANTS, VariantProcess

GOLDEN = BENCH_DIR.parent / "tests" / "data" / "golden"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="number of JPEGs (default 2000)")
    p.add_argument("--big-fraction", type=float, default=0.1, help="share of 500x500 images")
    p.add_argument("--repeats", type=int, default=2, help="Spark / (b) alternations (default 2)")
    p.add_argument("--chunk", type=int, default=32, help="images per alternation step")
    p.add_argument("--batch-size", type=int, default=32, help="model batch of variant (b)")
    p.add_argument("--spark-precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--no-spark", action="store_true", help="skip the Spark job and the probe")
    p.add_argument("--quick", action="store_true", help="smoke run: --n 32 --repeats 1")
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    p.add_argument("--workdir", help="keep images and outputs here (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.repeats, args.chunk = min(args.n, 32), 1, 16
    return args


def interleave(procs: list[VariantProcess], jpegs: list[bytes], chunk: int) -> dict[str, Any]:
    """Run every variant on every chunk, rotating the order; per-variant totals."""
    stats: dict[str, dict[str, Any]] = {
        p.name: {"images": 0, "seconds": 0.0, "prep": 0.0, "loads": [], "rates": [], "feats": []}
        for p in procs
    }
    for k, start in enumerate(range(0, len(jpegs), chunk)):
        part = jpegs[start : start + chunk]
        shift = k % len(procs)
        for proc in procs[shift:] + procs[:shift]:
            feats, seconds, prep = proc.run("jpegs", part)
            s = stats[proc.name]
            s["images"] += len(part)
            s["seconds"] += seconds
            s["prep"] += prep
            s["loads"].append(load1())
            s["rates"].append(len(part) / seconds)
            s["feats"].append(feats)
        print(
            f"  chunk {k + 1}: {start + len(part)}/{len(jpegs)} images, load {load1():.1f}",
            flush=True,
        )
    for s in stats.values():
        s["feats"] = np.concatenate(s["feats"])
        s["ips"] = s["images"] / s["seconds"]
    return stats


def real_images() -> dict[str, list[np.ndarray]]:
    from PIL import Image

    golden = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(GOLDEN.glob("*.png"))]
    return {
        "tests/data/golden/*.png (299x299)": golden,
        "sklearn sample photos (427x640)": sample_photos(),
    }


def fidelity(procs: dict[str, VariantProcess], crops: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, images in real_images().items():
        f32, _, _ = procs["float32"].run("arrays", images)
        bf16, _, _ = procs["bfloat16"].run("arrays", images)
        rows.append(
            {
                "set": name,
                "n": len(images),
                "cos": cosines(bf16, f32),
                "maxabs": float(np.abs(bf16 - f32).max()),
            }
        )
    f32, bf16 = crops["float32"]["feats"], crops["bfloat16"]["feats"]
    rows.append(
        {
            "set": "generated crops (JPEG)",
            "n": len(f32),
            "cos": cosines(bf16, f32),
            "maxabs": float(np.abs(bf16 - f32).max()),
        }
    )
    return rows


def startup_probe(image_dir: Path, precision: str, *, warm_up: bool) -> dict[str, float]:
    cmd = [
        sys.executable,
        str(BENCH_DIR / "spark_probe.py"),
        str(image_dir),
        "--precision",
        precision,
    ] + ([] if warm_up else ["--no-warm-up"])
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"startup probe failed:\n{out.stderr[-3000:]}")
    marks = json.loads(out.stdout.strip().splitlines()[-1])
    marks["process_wall"] = round(wall, 3)
    marks["load"] = load1()
    marks["warm_up"] = warm_up
    return marks


def spark_rounds(
    args: argparse.Namespace, work: Path, img_dir: Path, jpegs: list[bytes], f32: VariantProcess
) -> list[dict[str, Any]]:
    rounds = []
    for r in range(args.repeats):
        print(f"Spark run {r + 1}/{args.repeats} ...", flush=True)
        run: CliRun = featurize_cli(
            img_dir,
            work / f"out_{r}",
            log_path=work / f"spark_{r}.log",
            extra=("--runtime", "tensorflow", "--precision", args.spark_precision),
        )
        load0 = load1()
        t0 = time.perf_counter()
        for start in range(0, len(jpegs), args.chunk):
            f32.run("jpegs", jpegs[start : start + args.chunk])
        b_ips = len(jpegs) / (time.perf_counter() - t0)
        rounds.append({"spark": run, "b_ips": b_ips, "b_load": (load0 + load1()) / 2})
        print(f"  e2e {run.end_to_end_ips:.2f} img/s, (b) {b_ips:.2f} img/s", flush=True)
    return rounds


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    before = calibrate()
    print(f"calibration before: {before.describe()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        work = Path(args.workdir or tmp)
        img_dir = work / "images"
        paths = write_jpegs(img_dir, args.n, big_fraction=args.big_fraction, seed=0)
        jpegs = [p.read_bytes() for p in paths]
        print(f"{len(jpegs)} JPEGs in {img_dir} ({sum(map(len, jpegs)) / 1e6:.1f} MB)", flush=True)
        procs = {v: VariantProcess.start(v, str(work), args.batch_size) for v in VARIANTS}
        build = {v: p.build_s for v, p in procs.items()}
        warm = {v: p.run("jpegs", jpegs[: args.chunk])[1] for v, p in procs.items()}
        print("in-process variants, alternated ...", flush=True)
        inproc = interleave(list(procs.values()), jpegs, args.chunk)
        middle = calibrate()  # brackets the in-process phase with `before`
        print(f"calibration after the in-process phase: {middle.describe()}", flush=True)
        fid = fidelity(procs, inproc)
        agree = cosines(inproc["tutorial"]["feats"], inproc["float32"]["feats"])
        procs.pop("tutorial").stop()
        procs.pop("bfloat16").stop()
        probe, rounds = [], []
        if not args.no_spark:  # with and without the workers' warm-up, alternated
            for warm_up in (True, False, True, False):
                probe.append(startup_probe(img_dir, args.spark_precision, warm_up=warm_up))
            rounds = spark_rounds(args, work, img_dir, jpegs, procs["float32"])
        procs["float32"].stop()
    after = calibrate()
    report(
        args,
        before=before,
        middle=middle,
        after=after,
        inproc=inproc,
        warm=warm,
        fidelity=fid,
        agree_min=float(agree.min()),
        probe=probe,
        rounds=rounds,
        build=build,
    )


if __name__ == "__main__":
    main()
