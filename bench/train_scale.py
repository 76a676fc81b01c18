"""``pool3 train`` end to end on pool_3-like tables of growing size: where the time and memory go.

    python bench/train_scale.py --features out/fm/features --rows 50000,200000 [--solver auto]

For each size a table is made with ``bench/tablegen.py`` (48 classes, real residuals of the
``--features`` table, ``rows // 100`` exact copies), then ``pool3 train`` runs on it as a
user runs it (default settings unless ``--solver``/``--conf``/``--set``), in a fresh
process whose tree is sampled for peak memory (driver Python, JVM). The phases come from
pool3's own log lines: Spark's checks and split (``prepare``), reading the features to the
driver, the fit (with passes), duplicates, thumbnails, and the rest (metrics, report,
commit). ``others / fit`` is issue 23's point 5: everything besides the fit stays under a
quarter of it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from common import append_results, calibrate, md_table
from procmem import TreeSampler

HERE = Path(__file__).resolve().parent
POOL3 = Path(sys.executable).with_name("pool3")

_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO "
_LINES = {
    "start": r"pool3\.session: Spark",
    "table": r"pool3\.training\.rules: feature table:",
    "solver": r"pool3\.commands\.train: solver: (\w+) because",
    "read": r"pool3\.training\.data: read \d+ feature rows .* in ([\d.]+) s",
    "fit": r"pool3\.training\.result: fit (.+) in ([\d.]+)s; test accuracy ([\d.]+)%",
    "passes": r"newton: (\d+) passes",
    "dups": r"pool3\.training\.duplicates: duplicates: (\d+) exact and (\d+) near .* in ([\d.]+) s",
    "thumbs": r"pool3\.report\.thumbs: report: .* in ([\d.]+) s",
    "commit": r"pool3\.storage\.commit: committed",
}


def _when(line: str) -> float:
    stamp = re.match(_STAMP, line)
    if not stamp:
        return float("nan")
    return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def phases(log: str) -> dict[str, Any]:
    """Seconds per phase from a ``pool3 train`` log (see the module docstring)."""
    found: dict[str, tuple[float, re.Match[str]]] = {}
    for line in log.splitlines():
        for key, pattern in _LINES.items():
            m = re.search(pattern, line)
            if m and key not in found:
                found[key] = (_when(line), m)
    out: dict[str, Any] = {}
    if "table" in found and "solver" in found:
        out["prepare_s"] = found["solver"][0] - found["start"][0]
        out["solver"] = found["solver"][1].group(1)
    if "read" in found:
        out["read_s"] = float(found["read"][1].group(1))
    if "fit" in found:
        out["fit_s"] = float(found["fit"][1].group(2))
        out["accuracy"] = float(found["fit"][1].group(3))
    if "passes" in found:
        out["passes"] = int(found["passes"][1].group(1))
    if "dups" in found:
        out["exact"] = int(found["dups"][1].group(1))
        out["dups_s"] = float(found["dups"][1].group(3))
    if "thumbs" in found:
        out["thumbs_s"] = float(found["thumbs"][1].group(1))
    if "fit" in found and "commit" in found:
        after_fit = found["commit"][0] - found["fit"][0]
        out["rest_s"] = after_fit - out.get("dups_s", 0) - out.get("thumbs_s", 0)
    return out


def run_train(table: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [str(POOL3), "train", "--features", str(table), "--output", str(out), *extra]
    cmd += ["--mode", "overwrite"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid).start()
    log, _ = proc.communicate()
    sampler.stop()
    result = {"rc": proc.returncode, "total_s": time.perf_counter() - started, **phases(log)}
    result.update(sampler.summary())
    if proc.returncode:
        result["error"] = (log.strip().splitlines() or [""])[-1][:300]
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--features", required=True, help="a real pool3 feature table")
    p.add_argument("--rows", default="50000,200000")
    p.add_argument("--spread", type=float, default=1.5)
    p.add_argument("--solver", default=None, help="train.solver (default: the config's)")
    p.add_argument("--conf", default=None, help="pool3 --conf profile")
    p.add_argument("--work", default=None, help="folder for the tables (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="pool3-train-scale-"))
    extra = [*(["--solver", args.solver] if args.solver else [])]
    extra += [*(["--conf", args.conf] if args.conf else [])]
    before = calibrate()
    rows = []
    for n in [int(x) for x in args.rows.split(",") if x]:
        table = work / f"table-{n}"
        if not (table / "_SUCCESS").exists():
            gen = [sys.executable, str(HERE / "tablegen.py"), "--features", args.features]
            gen += ["--rows", str(n), "--classes", "48", "--spread", str(args.spread)]
            gen += ["--exact-copies", str(n // 100), "--out", str(table)]
            subprocess.run(gen, check=True)
        print(f"pool3 train on {n} rows ...", flush=True)
        r = run_train(table, work / f"model-{n}", extra)
        print(r, flush=True)
        others = sum(r.get(k, 0.0) for k in ("dups_s", "thumbs_s", "rest_s"))
        rows.append(
            [
                n,
                r["rc"],
                r.get("solver", "-"),
                round(r["total_s"], 1),
                round(r.get("prepare_s", float("nan")), 1),
                round(r.get("read_s", float("nan")), 1),
                round(r.get("fit_s", float("nan")), 1),
                r.get("passes", "-"),
                round(r.get("dups_s", float("nan")), 1),
                f"{r.get('exact', '-')} / {n // 100}",
                round(r.get("thumbs_s", float("nan")), 1),
                round(r.get("rest_s", float("nan")), 1),
                f"{others / r['fit_s']:.2f}" if r.get("fit_s") else "-",
                r.get("accuracy", "-"),
                round(r["driver_mb"]),
                round(r["jvm_mb"]),
                r.get("error", ""),
            ]
        )
    after = calibrate()
    header = [
        "rows", "rc", "solver", "total s", "prepare s", "read s", "fit s", "passes",
        "duplicates s", "exact found / planted", "thumbnails s", "rest s", "others / fit",
        "accuracy %", "driver peak MB", "JVM peak MB", "error",
    ]  # fmt: skip
    append_results(
        "Training end to end (pool3 train)",
        before=before,
        after=after,
        sections=[("Phases", md_table(header, rows))],
        notes=[
            f"Tables: bench/tablegen.py, 48 classes, spread {args.spread}, rows/100 exact "
            f"copies, from {args.features}. pool3 train with {' '.join(extra) or 'defaults'}.",
            "others = duplicates + thumbnails + rest (metrics, suspects, report, commit).",
        ],
        write=not args.no_write,
    )
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
