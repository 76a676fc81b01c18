"""The workers' prefetch (``featurize.prefetch``) on and off, without Spark.

One process per CPU (as ``local[*]`` runs one task per core), each with the OpenVINO
featurizer pool3 ships (1 inference thread, precision ``auto``) running the featurize
step's ``mapInPandas`` body (:func:`pool3.extraction.kernel.featurize_batches`) over its
share of ``n`` 100 x 100 JPEGs read through ``pool3.storage.files``; all at once, the
slowest worker's wall per run. Each of ``latency_ms`` (comma list) adds a sleep before
every file read (a stand-in for an object store's time to first byte; 0 = page-cached
local files). Figures per latency: ``on``/``off`` images/s and ``ratio`` (on / off).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness.core import Figures, FuncVariant, ProcessVariant, Scenario, alternate, medians
from bench.harness.images import write_jpegs
from bench.scenarios.featurize import prepare

FRAME_ROWS = 64  #: rows per input frame


def serve(bundle_file: str) -> Any:
    """In a worker process: ``(folder, names, prefetch, latency_s)`` -> rows, errors."""
    import pandas as pd

    from pool3.extraction import kernel
    from pool3.model.featurizer import featurizer_from_bundle
    from pool3.storage.files import read_file, resolve

    bundle = pickle.loads(Path(bundle_file).read_bytes())
    featurizer = featurizer_from_bundle(bundle, threads=1, precision="auto")

    def run(item: tuple[str, list[str], bool, float]) -> Figures:
        folder, names, prefetch, latency_s = item

        def slow_read(*args: Any, **kwargs: Any) -> Any:
            time.sleep(latency_s)
            return read_file(*args, **kwargs)

        kernel.read_file = slow_read if latency_s else read_file  # type: ignore[assignment]
        root = resolve(folder)
        paths = [f"{root.uri}/{n}" for n in names]
        lengths = [(Path(folder) / n).stat().st_size for n in names]
        frames = [
            pd.DataFrame({"path": paths[i : i + FRAME_ROWS], "length": lengths[i : i + FRAME_ROWS]})
            for i in range(0, len(paths), FRAME_ROWS)
        ]
        opts = kernel.WorkerOptions(fingerprint="bench", root=root, prefetch=prefetch)
        outs = list(kernel.featurize_batches(iter(frames), lambda: featurizer, opts))
        return {
            "rows": sum(map(len, outs)),
            "errors": sum(int(o["error"].notna().sum()) for o in outs),
        }

    return run


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    workers = o.workers or os.cpu_count() or 1
    latencies = [float(x) for x in str(o.latency_ms).split(",") if x]
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        names = [p.name for p in write_jpegs(Path(tmp, "img"), o.n, big_fraction=0.0, seed=0)]
        prepare(Path(tmp), ["ov-float32"], [])
        procs = [
            ProcessVariant(
                f"w{i}", f"{__name__}:serve", {"bundle_file": f"{tmp}/ov-float32.bundle"}
            )
            for i in range(workers)
        ]
        for p in procs:
            p.setup()

        def variant(prefetch: bool) -> FuncVariant:
            def go(ms: float) -> Figures:
                start = time.perf_counter()
                for i, p in enumerate(procs):
                    p.send((f"{tmp}/img", names[i::workers], prefetch, ms / 1000))
                done = [p.answer() for p in procs]
                assert sum(d["rows"] for d in done) == o.n and not sum(d["errors"] for d in done)
                return {"images_per_s": o.n / (time.perf_counter() - start)}

            return FuncVariant("on" if prefetch else "off", go)

        try:
            records = alternate(
                [variant(False), variant(True)],
                rounds=o.rounds,
                warmup=1,
                items=latencies,
                label=lambda ms: f"{ms:g}ms",
            )
        finally:
            for p in procs:
                p.stop()
    figures = medians(records)
    for ms in latencies:
        on, off = figures[f"{ms:g}ms/on/images_per_s"], figures[f"{ms:g}ms/off/images_per_s"]
        figures[f"{ms:g}ms/ratio"] = on / off
    return figures, records, [f"{workers} worker processes, {o.n} images per run"]


SCENARIO = Scenario(
    name="prefetch",
    doc=__doc__ or "",
    run=run,
    options={"n": 400, "latency_ms": "0,20", "workers": 0, "rounds": 4},
    quick={"n": 16, "latency_ms": "0,20", "rounds": 1},
)
