"""``pool3 featurize`` before and after the Spark Connect work, and over Spark Connect.

Variants, alternated ``--rounds`` times on the same JPEGs (bench/images_gen.py), each a fresh
``pool3 featurize`` process with default settings (``--conf local``):

- ``base``: the revision ``--base`` (default: the one before issue 24) from a git worktree,
  with its ``lib`` first on ``PYTHONPATH`` (the workers inherit it): the model as a
  broadcast, timings by accumulators, outputs through Hadoop's FileSystem;
- ``head``: this checkout on Spark Classic: the model as a session artifact, timings by
  ``DataFrame.observe``, outputs through ``pyarrow.fs``;
- ``connect``: this checkout as a Spark Connect client (``--remote``) of a local server
  (``local[*]``) started from the installed pyspark, for information (its server is warm).

Prints, per variant, the median wall time, end-to-end rate, the featurize phase's rate, the
time to ship the model, and ``head / base`` ratios of medians; ``--write`` appends to
bench/RESULTS.md. Machine and CPU flags are printed with the figures (no AMX is needed here:
the variants run the same inference).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import append_results, calibrate, machine_info, md_table
from images_gen import write_jpegs

REPO = Path(__file__).resolve().parents[1]
BASE = "20d168a"  # the last commit before issue 24
HEADER = ["variant", "wall s", "images/s end to end", "phase images/s", "model shipping s", "runs"]


def run(variant: str, images: Path, out: Path, base_lib: Path, url: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL3_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYSPARK_PYTHON"] = sys.executable
    cmd = [sys.executable, "-m", "pool3.cli", "featurize", "--conf", "local"]
    cmd += ["--input", str(images), "--output", str(out), "--mode", "overwrite"]
    if variant == "base":
        env["PYTHONPATH"] = str(base_lib)
    if variant == "connect":
        cmd += ["--remote", url]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{variant}: exit {done.returncode}\n{done.stderr[-3000:]}")
    summary = json.loads((out / "_pool3_summary.json").read_text())
    shipped = re.search(r"model shipped as \S+ \(\S+ MB\) in ([\d.]+) s", done.stderr)
    return {
        "wall": wall,
        "images": summary["images"],
        "phase_ips": summary["images_per_second"],
        "ship_s": float(shipped.group(1)) if shipped else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=BASE)
    parser.add_argument("--work", default=tempfile.gettempdir() + "/pool3-connect-bench")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    work = Path(args.work)
    images = work / f"jpegs-{args.images}"
    if not images.is_dir():
        write_jpegs(images, args.images)
    tree = work / f"base-{args.base}"
    if not tree.is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree),
                        args.base], check=True, capture_output=True)  # fmt: skip
    from connect import start_connect_server

    server = start_connect_server(Path(tempfile.mkdtemp(prefix="pool3-connect-")))
    print(machine_info().describe())
    before = calibrate()
    figures: dict[str, list[dict[str, float]]] = {"base": [], "head": [], "connect": []}
    try:
        for round_ in range(args.rounds):
            for variant in figures:
                got = run(variant, images, work / f"out-{variant}", tree / "lib", server.url)
                figures[variant].append(got)
                print(round_, variant, {k: round(v, 2) for k, v in got.items()}, flush=True)
    finally:
        server.stop()
    after = calibrate()

    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in figures[variant])

    rows = []
    for variant in figures:
        n = figures[variant][0]["images"]
        wall = med(variant, "wall")
        phase, ship = med(variant, "phase_ips"), med(variant, "ship_s")
        rows.append([variant, wall, n / wall, phase, ship, len(figures[variant])])
    ratios = [
        ["end-to-end rate head / base", med("base", "wall") / med("head", "wall")],
        ["featurize phase rate head / base", med("head", "phase_ips") / med("base", "phase_ips")],
        ["end-to-end rate connect / head", med("head", "wall") / med("connect", "wall")],
    ]
    append_results(
        f"pool3 featurize before/after Spark Connect support, {args.images} JPEGs",
        before=before,
        after=after,
        sections=[
            ("Medians per variant (alternated)", md_table(HEADER, rows)),
            ("Ratios of medians", md_table(["ratio", "value"], ratios)),
        ],
        notes=[
            f"base = {args.base} (model broadcast, accumulators, Hadoop FileSystem); head = "
            "this checkout on Spark Classic; connect = this checkout with --remote to a local "
            "Spark Connect server (local[*]) started by the bench",
            "model shipping s: the 'model shipped' log line (head/connect: addArtifacts of "
            "the 87 MB model file); base broadcasts it and logs no time",
        ],
        write=args.write,
    )


if __name__ == "__main__":
    main()
