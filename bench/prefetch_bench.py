"""The workers' prefetch (``featurize.prefetch``) on and off, with and without a read latency.

    python bench/prefetch_bench.py [--n 400] [--latency-ms 0,20] [--rounds 4]
                                   [--workers 0] [--no-write]

What the tasks of a ``local[*]`` featurize run do, without Spark around them: ``--workers``
processes (0: one per CPU, as ``local[*]`` runs one task per core), each holding the
featurizer pool3 ships by default here (OpenVINO, precision ``auto``, 1 inference thread as
a task with ``spark.task.cpus = 1``, the default batch size) and running
:func:`pool3.extraction.kernel.featurize_batches`, the ``mapInPandas`` body, over frames of
``(path, length)`` rows of its share of ``--n`` 100x100 JPEGs, read through
:mod:`pool3.storage.files` from this machine's page cache. All workers run at once; the
wall of a run is the slowest worker's.

``--latency-ms L`` makes every file read wait ``L`` ms first (a sleep before
:func:`pool3.storage.files.read_file`), as a GET from an object store waits for its first
byte (S3 in-region: tens of ms): a stand-in for the network's wait, not a real store. 0 is
the local case. Per round and latency both variants run, the order alternating between
rounds; medians and on / off to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common import append_results, calibrate, md_table
from images_gen import write_jpegs
from runtime_variants import prepare_bundles

FRAME_ROWS = 64  #: rows per input frame (an Arrow batch of the featurize step is larger)


def _serve(conn: Connection, bundle_file: str) -> None:
    import pickle

    import pandas as pd

    from pool3.extraction import kernel
    from pool3.extraction.kernel import WorkerOptions, featurize_batches
    from pool3.model.featurizer import featurizer_from_bundle
    from pool3.storage.files import read_file, resolve

    featurizer = featurizer_from_bundle(
        pickle.loads(Path(bundle_file).read_bytes()), threads=1, precision="auto"
    )
    conn.send(("ready", featurizer.precision))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        _, folder, names, prefetch, latency_s = msg

        def slow_read(*args: Any, wait_s: float = latency_s, **kwargs: Any) -> Any:
            time.sleep(wait_s)
            return read_file(*args, **kwargs)

        kernel.read_file = slow_read if latency_s else read_file  # type: ignore[assignment]
        root = resolve(folder)
        paths = [f"{root.uri}/{n}" for n in names]
        lengths = [(Path(folder) / n).stat().st_size for n in names]
        frames = [
            pd.DataFrame({"path": paths[i : i + FRAME_ROWS], "length": lengths[i : i + FRAME_ROWS]})
            for i in range(0, len(paths), FRAME_ROWS)
        ]
        opts = WorkerOptions(fingerprint="bench", root=root, prefetch=prefetch)
        start, rows, errors = time.perf_counter(), 0, 0
        for out in featurize_batches(iter(frames), lambda: featurizer, opts):
            rows += len(out)
            errors += int(out["error"].notna().sum())
        conn.send(("done", time.perf_counter() - start, rows, errors))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=400, help="images per run (all workers together)")
    p.add_argument("--latency-ms", default="0,20", help="comma-separated read latencies")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--workers", type=int, default=0, help="0: one per CPU")
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    args = p.parse_args()
    workers = args.workers or os.cpu_count() or 1
    latencies = [float(x) for x in args.latency_ms.split(",")]
    before_cal = calibrate()
    got: dict[tuple[float, bool], list[float]] = {
        (ms, pf): [] for ms in latencies for pf in (False, True)
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        names = [p.name for p in write_jpegs(work / "img", args.n, big_fraction=0.0, seed=0)]
        # the float OpenVINO IR pool3 ships (the name only says which file; the precision
        # is the workers' own "auto", as in a run)
        prepare_bundles(work, ("ov-bfloat16",), calibration=[])
        bundle = str(work / "ov-bfloat16.bundle")
        ctx = mp.get_context("spawn")
        procs, conns = [], []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, bundle), daemon=True)
            proc.start()
            procs.append(proc)
            conns.append(parent)
        ready = [c.recv() for c in conns]  # every worker has built its model
        precision = ready[0][1]
        shares = [names[i::workers] for i in range(workers)]

        def run(prefetch: bool, latency_ms: float) -> float:
            start = time.perf_counter()
            for conn, share in zip(conns, shares, strict=True):
                conn.send(("run", str(work / "img"), share, prefetch, latency_ms / 1000))
            done = [c.recv() for c in conns]
            assert sum(d[2] for d in done) == args.n and sum(d[3] for d in done) == 0, done
            return time.perf_counter() - start

        run(True, 0.0)  # warm-up: first inferences, page cache
        for r in range(args.rounds):
            for ms in latencies:
                for pf in (False, True) if r % 2 == 0 else (True, False):
                    wall = run(pf, ms)
                    got[(ms, pf)].append(wall)
                    print(f"round {r + 1}, {ms:g} ms, prefetch {pf}: {wall:.2f} s", flush=True)
        for conn in conns:
            conn.send(("stop",))
        for proc in procs:
            proc.join(timeout=30)
    after_cal = calibrate()
    rows = []
    for ms in latencies:
        off, on = statistics.median(got[(ms, False)]), statistics.median(got[(ms, True)])
        pairs = sum(b < a for a, b in zip(got[(ms, False)], got[(ms, True)], strict=True))
        rows.append([ms, args.n / off, args.n / on, off / on, f"{pairs} of {args.rounds}"])
    per_run = [
        [ms, "on" if pf else "off", *(f"{w:.2f}" for w in walls)] for (ms, pf), walls in got.items()
    ]
    append_results(
        "Worker prefetch on / off (featurize.prefetch), the mapInPandas body without Spark",
        before=before_cal,
        after=after_cal,
        sections=[
            (
                f"Medians of {args.rounds} alternated rounds, {args.n} JPEGs of 100x100, "
                f"{workers} workers x 1 thread, OpenVINO {precision}",
                md_table(
                    ["read latency ms", "off images/s", "on images/s", "on / off", "on faster"],
                    rows,
                ),
            ),
            (
                "Each run, seconds",
                md_table(
                    ["latency ms", "prefetch", *(f"r{i + 1}" for i in range(args.rounds))],
                    per_run,
                ),
            ),
        ],
        notes=[
            "read latency: a sleep before each file's read (a stand-in for an object store's "
            "time to first byte), 0 = page-cached local files",
            "on faster: rounds in which prefetch on took less wall than off",
        ],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
