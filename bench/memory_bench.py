"""Peak memory of the Spark featurize job against the number of images.

    python bench/memory_bench.py [--sizes 1000,5000,20000] [--real-sizes 1000] [--quick]

Runs ``pool3 featurize --conf local`` (``local[*]``) as a fresh process per size and samples
its process tree from /proc (:mod:`procmem`): peak RSS (``VmHWM``) of the Python driver, the
JVM, the ``pyspark.daemon`` and each Python worker. The images are 100x100 JPEG crops of
real photos (:mod:`images_gen`); each size is a prefix of the same set.

Two models:
  ``real``  the shipped Inception-v3 (what users run; ~5-10 images/s on 2 cores, so only
            the ``--real-sizes``);
  ``light`` a stand-in frozen graph with the same tensor names (``ResizeBilinear`` ->
            average pool -> dense -> ``pool_3`` of 2048), loaded through pool3's ``.pb``
            source: the same Spark step, decode, resize, Arrow batches and Parquet write,
            but ~100x cheaper inference, so 20,000 images take minutes. It shows whether
            memory grows with N; the real model's fixed cost per worker (TF + weights +
            activations) comes from the ``real`` rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import append_results, calibrate, md_table
from images_gen import link_subset, write_jpegs
from spark_cli import CliRun, featurize_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1000,5000,20000", help="N for the light model")
    p.add_argument("--real-sizes", default="1000", help="N for the real model ('' = none)")
    p.add_argument("--quick", action="store_true", help="smoke run: light 50,200; no real")
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    p.add_argument("--workdir", help="keep images and outputs here (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.real_sizes = "50,200", ""
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.real_sizes = [int(s) for s in args.real_sizes.split(",") if s]
    return args


def write_light_graph(path: Path) -> Path:
    """A frozen graph pool3 accepts as a model source, with trivial inference cost."""
    import tensorflow as tf

    graph = tf.Graph()
    rng = np.random.default_rng(0)
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="input")
        x = tf.raw_ops.ResizeBilinear(
            images=images,
            size=[299, 299],
            align_corners=False,
            half_pixel_centers=False,
            name="ResizeBilinear",
        )
        x = tf.nn.avg_pool2d((x - 128.0) / 128.0, ksize=23, strides=23, padding="VALID")
        x = tf.reshape(x, [-1, 13 * 13 * 3])
        w = tf.constant(rng.standard_normal((13 * 13 * 3, 2048)).astype(np.float32) / 20)
        tf.reshape(tf.nn.relu(tf.matmul(x, w)), [-1, 1, 1, 2048], name="pool_3")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def run_sizes(
    work: Path, paths: list[Path], sizes: list[int], model: str, extra: tuple[str, ...]
) -> list[tuple[str, int, CliRun]]:
    runs = []
    for n in sizes:
        in_dir = link_subset(paths[:n], work / f"in_{n}")
        print(f"{model} model, {n} images ...", flush=True)
        run = featurize_cli(
            in_dir, work / f"out_{model}_{n}", log_path=work / f"{model}_{n}.log", extra=extra
        )
        print(f"  {run.wall_s:.0f} s, memory {run.memory}", flush=True)
        runs.append((model, n, run))
    return runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from pool3.extraction.batching import auto_batch_size
    from pool3.session import records_per_batch

    before = calibrate()
    with tempfile.TemporaryDirectory(prefix="pool3-membench-") as tmp:
        work = Path(args.workdir or tmp)
        n_max = max(args.sizes + args.real_sizes)
        paths = write_jpegs(work / "pool", n_max, big_fraction=0.0, seed=1)
        light = write_light_graph(work / "light_pool3.pb")
        runs = run_sizes(work, paths, args.sizes, "light", ("--model", str(light)))
        runs += run_sizes(work, paths, args.real_sizes, "real", ())
    after = calibrate()
    rows = [
        [
            model,
            n,
            round(r.wall_s, 1),
            round(r.end_to_end_ips, 1),
            round(r.phase_ips, 1),
            round(float(r.memory["driver_mb"])),
            round(float(r.memory["jvm_mb"])),
            round(float(r.memory["daemon_mb"])),
            round(float(r.memory["worker_max_mb"])),
            int(r.memory["workers"]),
            f"{r.loadavg[0]:.1f}/{r.loadavg[1]:.1f}",
        ]
        for model, n, r in runs
    ]
    header = [
        "model",
        "images",
        "wall s",
        "e2e img/s",
        "phase img/s",
        "driver peak MB",
        "JVM peak MB",
        "daemon peak MB",
        "worker peak MB (max)",
        "workers",
        "load start/end",
    ]
    notes = []
    for model in ("light", "real"):
        mine = [(n, r) for m, n, r in runs if m == model]
        if len(mine) >= 2:
            (n0, r0), (n1, r1) = mine[0], mine[-1]
            for key, what in (
                ("worker_max_mb", "worker"),
                ("driver_mb", "driver"),
                ("jvm_mb", "JVM"),
            ):
                growth = float(r1.memory[key]) / max(float(r0.memory[key]), 1.0)
                notes.append(f"{model}: {what} peak at {n1} / at {n0} images = {growth:.2f}")
    batch = auto_batch_size(2048)
    notes += [
        f"conf/local.toml: featurize.worker_memory_mb=2048 -> model batch {batch} "
        f"(pool3.extraction.batching.auto_batch_size), Arrow maxRecordsPerBatch "
        f"{records_per_batch(2048, 0)} (pool3.session.records_per_batch).",
        "Peak = the largest VmHWM of each process (kernel-tracked peak RSS), sampled every "
        "0.25 s; 'worker' = processes forked by pyspark.daemon; 'workers' = how many there were.",
        f"Images: 100x100 JPEG crops of scikit-learn's sample photos; command of each run: "
        f"`{runs[0][2].command if runs else sys.executable}` (sizes and --model vary).",
    ]
    append_results(
        f"Memory vs number of images{' (quick)' if args.quick else ''}",
        before=before,
        after=after,
        sections=[
            ("Peak RSS by process, pool3 featurize --conf local (local[*])", md_table(header, rows))
        ],
        notes=notes,
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
