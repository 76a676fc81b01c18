"""Model batch size vs throughput: the evidence behind ``extraction.batching.auto_batch_size``.

    python bench/batch_bench.py [--sizes 1,4,8,16,25] [--threads 1,2] [--images 64]
                                [--rounds 3] [--no-write]

For each TF thread count (1 = one Spark task per core, as ``conf/local.toml`` runs; 2 = one
process using both cores), one process per batch size holds a float32 featurizer
(``threads`` intra-op threads) and the parent alternates them round by round (A B C, B C A,
...) on the same ``--images`` random 299x299 inputs, so that each measures with both cores
to itself and the VM's drift hits all alike. Decode is left out: this is the model alone.
Prints a table of images/s per round and the median, with the ratio to the batch size that
``auto_batch_size`` picks for the profiles' ``featurize.worker_memory_mb`` (2048 MB;
25 until 2026-11-30, now 4), and appends it to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from common import append_results, calibrate, load1, md_table


def _serve(conn: Connection, batch: int, threads: int, n: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from pool3.model import load_featurizer

    featurizer = load_featurizer("default", threads=threads)
    images = (np.random.default_rng(0).random((n, 299, 299, 3)) * 255).astype(np.float32)
    featurizer.featurize_batch(images[:batch])  # trace + oneDNN primitives for this shape
    conn.send("ready")
    while conn.recv() == "run":
        start = time.perf_counter()
        for i in range(0, n, batch):
            featurizer.featurize_batch(images[i : i + batch])
        conn.send(n / (time.perf_counter() - start))


def _measure(sizes: list[int], threads: int, n: int, rounds: int) -> dict[int, list[float]]:
    ctx = mp.get_context("spawn")
    procs: dict[int, tuple[Any, Connection]] = {}
    for batch in sizes:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, batch, threads, n), daemon=True)
        proc.start()
        assert parent.recv() == "ready"
        procs[batch] = (proc, parent)
    rates: dict[int, list[float]] = {b: [] for b in sizes}
    try:
        for r in range(rounds):
            order = sizes[r % len(sizes) :] + sizes[: r % len(sizes)]
            for batch in order:
                conn = procs[batch][1]
                conn.send("run")
                rates[batch].append(conn.recv())
            print(
                f"  threads {threads}, round {r + 1}: "
                + ", ".join(f"{b}: {rates[b][-1]:.2f}" for b in sizes)
                + f" img/s, load {load1():.1f}",
                flush=True,
            )
    finally:
        for proc, conn in procs.values():
            conn.send("stop")
            proc.join(timeout=30)
    return rates


def main() -> None:
    from pool3.extraction.batching import auto_batch_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,4,8,16,25", help="batch sizes (auto is added)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    auto = auto_batch_size(2048)
    if auto not in sizes:
        sizes.append(auto)
    before = calibrate()
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        rates = _measure(sizes, threads, args.images, args.rounds)
        base = statistics.median(rates[auto])
        for batch in sizes:
            med = statistics.median(rates[batch])
            rows.append(
                [
                    threads,
                    batch,
                    " / ".join(f"{x:.2f}" for x in rates[batch]),
                    round(med, 2),
                    round(med / base, 2),
                ]
            )
    after = calibrate()
    append_results(
        f"Model batch size, {args.images} images x {args.rounds} alternated rounds",
        before=before,
        after=after,
        sections=[
            (
                "float32 featurizer alone (no decode), images/s per round and median; "
                f"ratio to batch {auto} (auto_batch_size at worker_memory_mb=2048)",
                md_table(
                    ["TF threads", "batch", "img/s by round", "median img/s", f"vs batch {auto}"],
                    rows,
                ),
            )
        ],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
