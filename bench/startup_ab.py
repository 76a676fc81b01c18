"""A small ``pool3 featurize`` run before and after a change, alternated: where start-up goes.

    python bench/startup_ab.py --before-lib /tmp/old/lib [--n 32,800] [--rounds 4]
    python bench/startup_ab.py --before-spark spark.python.daemon.module=pyspark.daemon

"before" is another checkout (``--before-lib``: its ``lib`` goes first on ``PYTHONPATH``)
and/or this checkout with other settings (``--before-set KEY=VALUE``: pool3's ``--set``;
``--before-spark KEY=VALUE``: raw Spark settings through ``POOL3_SPARK__EXTRA``); "after"
is this checkout with default settings. Both run ``python -m pool3.cli featurize --conf
local`` as fresh processes (:func:`spark_cli.featurize_cli`: wall until the command's
output closes, as a scheduler reading it sees it) on the same folder of 100x100 JPEGs
(``bench/images_gen.py``, seed 0), alternated within each round, who goes first alternating
between rounds. Per run: wall, the featurize job (the summary's ``featurize_seconds``), the
fixed cost as issue 25 counts it (``outside`` = wall - featurize job), and the summary's
``timings`` (``session``, ``warm_up``: waiting for the workers after the listing). Medians
per size and variant, and after / before, go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import append_results, calibrate, md_table
from images_gen import write_jpegs
from spark_cli import featurize_cli

MEASURES = ("wall", "job", "outside", "session", "warm_up")


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {value!r}")
        out[key] = val
    return out


def run_once(images: Path, out: Path, log: Path, env: dict[str, str], sets: list[str]) -> dict:
    extra = tuple(a for kv in sets for a in ("--set", kv))
    run = featurize_cli(images, out, log_path=log, extra=extra, env=env)
    job = float(run.summary["featurize_seconds"])
    timings = run.timings
    return {
        "wall": run.wall_s,
        "job": job,
        "outside": run.wall_s - job,
        "session": timings.get("session", float("nan")),
        "warm_up": timings.get("warm_up", float("nan")),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", default="32,800", help="images per run, comma-separated sizes")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--before-lib", help="the earlier checkout's lib directory")
    p.add_argument("--before-set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--before-spark", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label", default="", help="what changed, for the RESULTS.md title")
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    args = p.parse_args()
    if not (args.before_lib or args.before_set or args.before_spark):
        raise SystemExit("say what 'before' is: --before-lib, --before-set or --before-spark")
    lib = Path(__file__).resolve().parents[1] / "lib"
    before_env = {"PYTHONPATH": str(Path(args.before_lib).resolve()) if args.before_lib else ""}
    if args.before_spark:
        spark = ", ".join(f'"{k}" = "{v}"' for k, v in _pairs(args.before_spark).items())
        before_env["POOL3_SPARK__EXTRA"] = "{" + spark + "}"
    variants = {
        "before": (before_env, args.before_set),
        "after": ({"PYTHONPATH": str(lib)}, []),
    }
    sizes = [int(n) for n in args.n.split(",")]
    before_cal = calibrate()
    got: dict[tuple[int, str], list[dict]] = {(n, v): [] for n in sizes for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        all_paths = write_jpegs(work / "all", max(sizes), big_fraction=0.0, seed=0)
        for n in sizes:
            folder = work / f"img{n}"
            folder.mkdir()
            for path in all_paths[:n]:
                (folder / path.name).hardlink_to(path)
        for r in range(args.rounds):
            for n in sizes:
                order = list(variants)[r % 2 :] + list(variants)[: r % 2]
                for name in order:
                    env, sets = variants[name]
                    out = work / f"out-{name}-{n}-{r}"
                    t = run_once(work / f"img{n}", out, work / f"{name}.log", env, sets)
                    got[(n, name)].append(t)
                    print(
                        f"round {r + 1} n={n} {name}: "
                        + ", ".join(f"{m} {t[m]:.2f}" for m in MEASURES),
                        flush=True,
                    )
    after_cal = calibrate()
    med = {k: {m: statistics.median(t[m] for t in ts) for m in MEASURES} for k, ts in got.items()}
    rows = [
        [n, m, med[(n, "before")][m], med[(n, "after")][m], med[(n, "after")][m] / b]
        for n in sizes
        for m in MEASURES
        if (b := med[(n, "before")][m])
    ]
    per_run = [
        [n, v, i + 1, *(t[m] for m in MEASURES)]
        for (n, v), ts in got.items()
        for i, t in enumerate(ts)
    ]
    before_desc = ", ".join(
        x
        for x in (
            f"lib {args.before_lib}" if args.before_lib else "",
            " ".join(f"--set {s}" for s in args.before_set),
            " ".join(f"spark {s}" for s in args.before_spark),
        )
        if x
    )
    append_results(
        f"pool3 featurize start-up, before / after{': ' + args.label if args.label else ''}",
        before=before_cal,
        after=after_cal,
        sections=[
            (
                f"Medians of {args.rounds} alternated rounds, seconds",
                md_table(["images", "measure", "before", "after", "after / before"], rows),
            ),
            ("Each run", md_table(["images", "variant", "round", *MEASURES], per_run)),
        ],
        notes=[
            f"before: {before_desc}; after: this checkout ({lib}), default settings",
            "outside = wall - the summary's featurize_seconds (issue 25's fixed cost); wall "
            "until the command's output closes (the driver JVM exits ~0.4 s after Python)",
            f"interpreter: {sys.executable}; " + json.dumps({"sizes": sizes}),
        ],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
