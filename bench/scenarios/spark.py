"""``pool3 featurize --conf local`` (``local[*]``) end to end against in-process loops.

Per round and size (``sizes``), alternated run by run on the same JPEGs: the one-process
TensorFlow float32 loop (``loop-tf``), the in-process OpenVINO loop a default run matches
(``loop-ov``: pool3's own precision and batch rules for this CPU, 2 threads), and
``pool3 featurize`` with each of ``settings`` (``auto`` = defaults, or ``tf-float32``,
``ov-int8``, ...: ``--runtime``/``--precision``). Per Spark run: ``e2e_ips`` (images /
process wall), ``phase_ips`` (the summary's images/s), ``e2e_ratio`` (to the round's TF
loop), ``phase_ratio`` (to the loop at the run's runtime, when one ran), ``outside_s``
(wall - the featurize job: the fixed cost as issue 25 counts it), ``fixed_s`` (wall - busy
seconds), the summary's start-up ``timings``, peak memory by role. ``fit/fixed_s``: the
intercept of wall = fixed + n / rate over the sizes' median walls (``auto``).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.core import Figures, FuncVariant, ProcessVariant, Scenario, alternate, medians
from bench.harness.images import link_subset, write_jpegs
from bench.harness.procs import featurize_figures, pool3
from bench.scenarios.featurize import prepare


def default_ov() -> str:
    """The in-process OpenVINO variant a default run matches here, e.g. ``ov-bfloat16@4``."""
    from pool3.config import load_config
    from pool3.extraction.batching import amx_flag, auto_batch_size
    from pool3.model.runtime import resolve, this_host

    host = this_host()
    precision = resolve("openvino", "auto", [replace(host)]).precision
    memory = load_config("local", env={}).featurize.worker_memory_mb
    amx = amx_flag(precision) in set(host.flags)
    batch = auto_batch_size(memory, runtime="openvino", precision=precision, amx=amx)
    return f"ov-{precision}@{batch}"


def spark_args(setting: str) -> list[str]:
    if setting == "auto":
        return []
    runtime, precision = setting.split("-")
    return ["--runtime", {"tf": "tensorflow", "ov": "openvino"}[runtime], "--precision", precision]


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    sizes = sorted({int(s) for s in str(o.sizes).split(",") if s})
    ov = default_ov()
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        work = Path(tmp)
        paths = write_jpegs(work / "images", max(sizes), seed=0)
        folders = {n: link_subset(paths[:n], work / f"in-{n}") for n in sizes}
        prepare(work, ["tf-float32", ov], [])
        loops = [
            ProcessVariant(name, "bench.scenarios.featurize:serve", {"variant": v, "workdir": tmp})
            for name, v in (("loop-tf", "tf-float32"), ("loop-ov", ov))
        ]

        def loop(variant: ProcessVariant) -> FuncVariant:
            def go(n: int) -> Figures:
                jpegs = [p.read_bytes() for p in paths[:n]]
                out = variant.run(jpegs)
                return {"images_per_s": n / out["seconds"], "seconds": out["seconds"]}

            return FuncVariant(variant.name, go, variant.setup, variant.stop)

        def featurize(setting: str) -> FuncVariant:
            def go(n: int) -> Figures:
                out = work / "out"
                args = ["featurize", "--conf", "local", "--input", str(folders[n])]
                args += ["--output", str(out), "--log-format", "json", *spark_args(setting)]
                figures = featurize_figures(pool3(args, log=work / "spark.log"))
                shutil.rmtree(out, ignore_errors=True)
                return figures

            return FuncVariant(setting, go)

        variants = [loop(v) for v in loops] + [featurize(s) for s in o.settings.split(",")]
        for v in variants:
            v.setup()
        try:
            records = alternate(variants, rounds=o.rounds, items=sizes)
        finally:
            for v in variants:
                v.stop()
    loop_ips = {(r["round"], r["item"], r["variant"]): r.get("images_per_s") for r in records}
    for r in records:
        if r["variant"].startswith("loop-"):
            continue
        r["e2e_ratio"] = r["e2e_ips"] / loop_ips[(r["round"], r["item"], "loop-tf")]
        same = {
            "tensorflow float32": "loop-tf",
            f"openvino {ov.split('-')[1].split('@')[0]}": "loop-ov",
        }
        if name := same.get(r["ran"]):
            r["phase_ratio"] = r["phase_ips"] / loop_ips[(r["round"], r["item"], name)]
    figures = medians(records)
    walls = [figures.get(f"{n}/auto/wall_s") for n in sizes]
    if len(sizes) > 1 and None not in walls:
        slope, intercept = np.polyfit(sizes, walls, 1)
        if slope > 0:
            figures |= {"fit/fixed_s": float(intercept), "fit/rate_ips": float(1 / slope)}
    notes = [f"loop-ov = {ov} (2 threads), the in-process loop a default run matches here"]
    return figures, records, notes


SCENARIO = Scenario(
    name="spark",
    doc=__doc__ or "",
    run=run,
    options={"sizes": "800,5000", "settings": "auto", "rounds": 2},
    quick={"sizes": "8,16", "rounds": 1},
)
