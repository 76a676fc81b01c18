"""The driver JVM's start-up and its own work, per JIT setting, alternated in one run.

    python bench/jvm_bench.py [--rounds 3] [--rows 20000] [--no-write]

Each measurement is a fresh child process that builds pool3's session
(:func:`pool3.session.build_session`, with the class-data archive of ``pool3 setup`` when
there is one) with the variant's ``-XX`` options and times, in seconds:

- ``session``: building the session (JVM start, SparkContext, SparkSession);
- ``first job``: the first Python job (``mapInPandas`` on one row per task slot, collected):
  SQL planning, the Python daemon and workers, their pandas/pyarrow imports;
- ``write``: ``--rows`` rows of a path and a 2048-float array from ``mapInPandas`` to Parquet
  (the featurize job's JVM side: Arrow in, Parquet out);
- ``toPandas``: reading them back to the driver (training's JVM side);
- ``stop``: ``spark.stop()``;
- ``process``: the child's wall time, interpreter start to exit.

Variants: ``default`` (the JVM's tiered JIT, C1 then C2) and ``c1`` (``-XX:TieredStopAtLevel=1``,
pool3's ``spark.quick_jit`` for featurize and classify). The medians and the ratio c1/default
per measure go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import append_results, calibrate, md_table

VARIANTS = {"default": "", "c1": "-XX:TieredStopAtLevel=1"}
MEASURES = ("session", "first job", "write", "toPandas", "stop", "process")

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
from pool3.config import load_config
from pool3.session import build_session
options, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
extra = {"spark.driver.extraJavaOptions": options} if options else {}
config = load_config("local", overrides={"spark.extra": extra}, env={})
t = {}
s0 = time.perf_counter()
spark = build_session(config, app_name="jvm-bench")
t["session"] = time.perf_counter() - s0
import numpy as np, pandas as pd

def one(frames):
    for _ in frames:
        pass
    yield pd.DataFrame({"pid": [os.getpid()]})

s0 = time.perf_counter()
slots = spark.sparkContext.defaultParallelism
spark.range(0, slots, numPartitions=slots).mapInPandas(one, "pid long").collect()
t["first job"] = time.perf_counter() - s0
vector = np.random.default_rng(0).random(2048, dtype=np.float32)

def features(frames):
    for f in frames:
        yield pd.DataFrame({"path": f["path"], "features": [vector] * len(f)})

paths = spark.createDataFrame(pd.DataFrame({"path": [f"file:/x/{i}.jpg" for i in range(rows)]}))
s0 = time.perf_counter()
paths.repartition(8).mapInPandas(features, "path string, features array<float>").write.mode(
    "overwrite").parquet(out)
t["write"] = time.perf_counter() - s0
s0 = time.perf_counter()
assert len(spark.read.parquet(out).toPandas()) == rows
t["toPandas"] = time.perf_counter() - s0
s0 = time.perf_counter()
spark.stop()
t["stop"] = time.perf_counter() - s0
print("JVMBENCH " + json.dumps(t), flush=True)
"""


def run_child(options: str, rows: int, out: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, options, str(rows), out],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"child failed ({options!r}):\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("JVMBENCH "))
    return {**json.loads(line.removeprefix("JVMBENCH ")), "process": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", type=int, default=20000, help="feature rows written and read back")
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    before = calibrate()
    got: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            names = list(VARIANTS)[r % 2 :] + list(VARIANTS)[: r % 2]  # alternate who goes first
            for name in names:
                t = run_child(VARIANTS[name], args.rows, str(Path(tmp) / f"{name}-{r}"))
                got[name].append(t)
                print(f"round {r + 1} {name}: " + ", ".join(f"{k} {t[k]:.2f}" for k in MEASURES))
    after = calibrate()
    med = {v: {m: statistics.median(t[m] for t in got[v]) for m in MEASURES} for v in VARIANTS}
    rows = [
        [m, med["default"][m], med["c1"][m], med["c1"][m] / med["default"][m]] for m in MEASURES
    ]
    per_run = [
        [v, i + 1, *(t[m] for m in MEASURES)] for v in VARIANTS for i, t in enumerate(got[v])
    ]
    append_results(
        "Driver JVM: default JIT vs C1 only (spark.quick_jit)",
        before=before,
        after=after,
        sections=[
            (
                f"Medians of {args.rounds} alternated rounds, seconds ({args.rows} feature rows)",
                md_table(["measure", "default JIT", "C1 only", "C1 / default"], rows),
            ),
            ("Each run", md_table(["variant", "round", *MEASURES], per_run)),
        ],
        notes=[
            "each run a fresh child process building pool3's session (class-data archive of "
            "`pool3 setup` where present), local[*]",
            "first job = the first mapInPandas job (SQL planning, Python daemon and workers); "
            "write = mapInPandas rows of a 2048-float array to Parquet; toPandas = reading "
            "them back",
        ],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
