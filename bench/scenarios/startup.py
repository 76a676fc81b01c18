"""Start-up of a small ``pool3 featurize --conf local`` run, before and after a change.

``after`` is this checkout with default settings; ``before`` is another checkout
(``before_lib``: its ``lib`` first on ``PYTHONPATH``) and/or settings (``before_set``:
``KEY=VALUE`` pairs separated by spaces, given as ``--set``; e.g. ``spark.quick_jit=false``
for the driver JVM's default JIT against C1 only). Both on the same 100 x 100 JPEGs, per
size of ``sizes``, alternated round by round (who goes first alternates too). Figures per
variant and size: ``wall_s``, ``job_s`` (the featurize job), ``outside_s`` (wall - job: the
fixed cost as issue 25 counts it) and the summary's ``session_s``, ``warm_up_s``, ...
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.core import Figures, FuncVariant, Scenario, alternate, medians
from bench.harness.images import write_jpegs
from bench.harness.procs import featurize_figures, pool3


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    sizes = sorted({int(s) for s in str(o.sizes).split(",") if s})
    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        work = Path(tmp)
        folders = {n: work / f"in-{n}" for n in sizes}
        for n, folder in folders.items():
            write_jpegs(folder, n, big_fraction=0.0, seed=n)

        def variant(name: str, lib: str, settings: str) -> FuncVariant:
            env = {"PYTHONPATH": os.pathsep.join(filter(None, [lib, os.environ.get("PYTHONPATH")]))}
            extra = [a for kv in settings.split() for a in ("--set", kv)]

            def go(n: int) -> Figures:
                args = ["featurize", "--conf", "local", "--input", str(folders[n])]
                args += ["--output", str(work / "out"), "--log-format", "json", *extra]
                figures = featurize_figures(pool3(args, log=work / f"{name}.log", env=env))
                shutil.rmtree(work / "out", ignore_errors=True)
                return figures

            return FuncVariant(name, go)

        variants = [variant("after", "", "")]
        if o.before_lib or o.before_set:
            variants.insert(0, variant("before", o.before_lib, o.before_set))
        records = alternate(variants, rounds=o.rounds, items=sizes)
    notes = [
        f"before: lib {o.before_lib or 'this checkout'}, settings {o.before_set or 'defaults'}"
    ]
    return medians(records), records, notes


SCENARIO = Scenario(
    name="startup",
    doc=__doc__ or "",
    run=run,
    options={"sizes": "32,800", "before_lib": "", "before_set": "", "rounds": 4},
    quick={"sizes": "8", "rounds": 1, "before_set": "spark.quick_jit=false"},
)
