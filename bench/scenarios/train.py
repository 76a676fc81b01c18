"""``pool3 train`` end to end on pool_3-like tables of growing size, solvers alternated.

Per size of ``rows`` a table is made by :mod:`bench.harness.tables` (``classes`` classes,
``spread``, from the real ``features`` table's class means and residuals, ``rows // 100``
exact copies; synthetic parts without ``features``), then ``pool3 train`` runs on it as a user
runs it, once per solver of ``solvers`` (``default``: the config's) and round, alternated,
each a fresh process whose tree is sampled for memory. Figures per size and solver:
``total_s``, ``fit_s``, ``accuracy``, Newton ``steps`` and ``cg`` steps, ``fit_jobs``
(pool3's count), ``jobs`` (Spark's event log, the whole run), exact duplicates found,
peak memory (``tree_mb``: the largest sum of the tree's resident sets).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.core import Figures, FuncVariant, Scenario, alternate, medians
from bench.harness.procs import pool3
from bench.harness.tables import TableGen, real_parts, synthetic_parts, write_table

#: pool3's log lines -> figures (module names left out: they move, the messages do not)
LINES = {
    r"solver: (\w+) because": ("solver",),
    r"fit .+ in ([\d.]+)s; test accuracy ([\d.]+)%": ("fit_s", "accuracy"),
    r"newton: \d+ passes over \d+ rows, (\d+) Newton steps, (\d+) CG steps": ("steps", "cg"),
    r"spark newton: (\d+) Spark jobs.*?, (\d+) Newton steps, (\d+) CG steps": (
        "fit_jobs", "steps", "cg",
    ),
    r"duplicates: (\d+) exact and (\d+) near .* in ([\d.]+) s": ("exact", "near", "dups_s"),
    r"C = 'auto': C=([\d.e+-]+) chosen .* in ([\d.]+) s": ("C", "search_s"),
}  # fmt: skip


def parse(log: str) -> Figures:
    out: Figures = {}
    for pattern, keys in LINES.items():
        if m := re.search(pattern, log):
            for key, value in zip(keys, m.groups(), strict=True):
                out[key] = value if key == "solver" else float(value)
    return out


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    sizes = sorted({int(s) for s in str(o.rows).split(",") if s})
    parts = real_parts(o.features) if o.features else synthetic_parts(o.classes)
    gen = TableGen(*parts, classes=o.classes, spread=o.spread, seed=0)
    with tempfile.TemporaryDirectory(prefix="pool3-bench-", dir=o.work or None) as tmp:
        work = Path(tmp)
        for n in sizes:
            write_table(gen, str(work / f"table-{n}"), n, copies=n // 100)

        def solver(name: str) -> FuncVariant:
            def go(n: int) -> Figures:
                events = work / "events"
                events.mkdir(exist_ok=True)
                args = ["train", "--features", str(work / f"table-{n}"), "--output"]
                args += [str(work / "model"), "--mode", "overwrite"]
                args += [] if name == "default" else ["--solver", name]
                args += [a for kv in o.set.split() for a in ("--set", kv)]
                for kv in ("enabled=true", f"dir={events}", "compress=false"):
                    args += ["--set", f"spark.extra.spark.eventLog.{kv}"]
                out = pool3(args, log=work / "train.log")
                log = (work / "train.log").read_text(errors="replace")
                jobs = sum(
                    f.read_text(errors="replace").count('"Event":"SparkListenerJobStart"')
                    for f in events.rglob("*")
                    if f.is_file()
                )
                shutil.rmtree(events, ignore_errors=True)
                memory = {k: v for k, v in out.items() if k.endswith("_mb")}
                return {"total_s": out["wall_s"], "jobs": jobs, **parse(log), **memory}

            return FuncVariant(name, go)

        variants = [solver(s) for s in o.solvers.split(",")]
        records = alternate(variants, rounds=o.rounds, items=sizes)
    notes = [f"table: {o.features or 'synthetic parts'}, {o.classes} classes; settings {o.set}"]
    return medians(records), records, notes


SCENARIO = Scenario(
    name="train",
    doc=__doc__ or "",
    run=run,
    options={"features": "", "rows": "20000,200000", "classes": 48, "spread": 1.5,
             "solvers": "newton,spark", "set": "", "work": "", "rounds": 2},
    quick={"rows": "1000", "classes": 4, "solvers": "newton,spark", "rounds": 1},
)  # fmt: skip
