"""``pool3 train`` end to end on pool_3-like tables of growing size, solvers side by side.

    python bench/train_scale.py --features out/fm/features --rows 20000,200000 \\
        --solvers newton,spark [--rounds 2] [--set train.C=auto] [--no-write]

For each size a table is made with ``bench/tablegen.py`` (48 classes, real residuals of the
``--features`` table, ``rows // 100`` exact copies; kept in ``--work``), then ``pool3 train``
runs on it as a user runs it (default settings, plus ``--solver`` for each of ``--solvers``
unless it is ``default``, and ``--set``), each run a fresh process whose tree is sampled
for memory (``tree MB``: the largest sum of its processes' resident sets at one sample;
driver Python, JVM). Solvers alternate within each round (who goes first alternates too).

Per run, from pool3's own log lines: Spark's checks and split (``prepare``), reading the
features to the driver, the fit (Newton steps, CG steps, those that ran as Spark jobs, the
active rows the driver held at most, MB the jobs shipped to it), duplicates, thumbnails,
the rest (metrics, report, commit); and the Spark jobs the whole run started (``jobs``, from
Spark's event log, which every run writes into a temporary folder) and those of the fit
(``fit jobs``, pool3's count). ``others / fit`` is everything besides the fit over the fit.
Per size: the medians per solver, each solver's fit and end-to-end wall against the first
solver's (``x first``), and **model agreement**: each model's predictions against the
first solver's on the table's first 50,000 rows, and the relative difference of their
weights.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from common import append_results, calibrate, md_table
from procmem import TreeSampler

HERE = Path(__file__).resolve().parent
POOL3 = Path(sys.executable).with_name("pool3")

_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO "
_LINES = {
    "start": r"pool3\.session: Spark",
    "table": r"pool3\.training\.rules: feature table:",
    "solver": r"pool3\.training\.driver: solver: (\w+) because",
    "read": r"pool3\.training\.data: read \d+ feature rows .* in ([\d.]+) s",
    "fit": r"pool3\.training\.result: fit (.+) in ([\d.]+)s; test accuracy ([\d.]+)%",
    "search": r"C = 'auto': C=([\d.e+-]+) chosen .* in ([\d.]+) s",
    "driver_fit": r"newton: (\d+) passes over \d+ rows, (\d+) Newton steps, (\d+) CG steps on "
    r"the (\d+) active rows",
    "spark_fit": r"spark newton: (\d+) Spark jobs(?: \((\d+) passes on the driver\))?, (\d+) "
    r"Newton steps, (\d+) CG steps \((\d+) as jobs, in \d+ steps\), (\d+) active rows held at "
    r"most, ([\d.]+) MB collected",
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
    """Seconds and counts per phase from a ``pool3 train`` log (see the module docstring)."""
    found: dict[str, tuple[float, re.Match[str]]] = {}
    for line in log.replace("\r", "\n").splitlines():
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
    if "search" in found:
        out["C"] = float(found["search"][1].group(1))
        out["search_s"] = float(found["search"][1].group(2))
    if "driver_fit" in found:
        m = found["driver_fit"][1]
        out |= {"fit_jobs": 0, "driver_passes": int(m.group(1))}
        out |= {"steps": int(m.group(2)), "cg": int(m.group(3)), "cg_jobs": 0}
        out |= {"held": int(m.group(4)), "shipped_mb": 0.0}
    if "spark_fit" in found:
        m = found["spark_fit"][1]
        out |= {"fit_jobs": int(m.group(1)), "driver_passes": int(m.group(2) or 0)}
        out |= {"steps": int(m.group(3)), "cg": int(m.group(4)), "cg_jobs": int(m.group(5))}
        out |= {"held": int(m.group(6)), "shipped_mb": float(m.group(7))}
    if "dups" in found:
        out["exact"] = int(found["dups"][1].group(1))
        out["near"] = int(found["dups"][1].group(2))
        out["dups_s"] = float(found["dups"][1].group(3))
    if "thumbs" in found:
        out["thumbs_s"] = float(found["thumbs"][1].group(1))
    if "fit" in found and "commit" in found:
        after_fit = found["commit"][0] - found["fit"][0]
        out["rest_s"] = after_fit - out.get("dups_s", 0) - out.get("thumbs_s", 0)
    return out


def spark_jobs(events: Path) -> int:
    """Jobs started, from the (uncompressed) event logs under ``events``."""
    jobs = 0
    for log in events.rglob("*"):
        if log.is_file() and not log.name.startswith("appstatus"):
            with log.open(encoding="utf-8", errors="replace") as lines:
                jobs += sum('"Event":"SparkListenerJobStart"' in line for line in lines)
    return jobs


def run_train(table: Path, out: Path, extra: list[str], keep: Path | None = None) -> dict[str, Any]:
    events = Path(tempfile.mkdtemp(prefix="pool3-events-"))
    cmd = [str(POOL3), "train", "--features", str(table), "--output", str(out), *extra]
    cmd += ["--mode", "overwrite", "--set", "spark.extra.spark.eventLog.enabled=true"]
    cmd += ["--set", f"spark.extra.spark.eventLog.dir={events}"]
    cmd += ["--set", "spark.extra.spark.eventLog.compress=false"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid).start()
    log, _ = proc.communicate()
    sampler.stop()
    result = {"rc": proc.returncode, "total_s": time.perf_counter() - started, **phases(log)}
    result.update(sampler.summary(), jobs=spark_jobs(events))
    if keep is not None:  # with the moment of the tree's peak, to place it among the phases
        peak = datetime.fromtimestamp(sampler.tree_at).strftime("%Y-%m-%d %H:%M:%S")
        keep.write_text(
            f"{log}\ntrain_scale: process tree peak {sampler.tree_kb // 1024} MB at {peak}\n"
        )
    shutil.rmtree(events, ignore_errors=True)
    if proc.returncode:
        result["error"] = (log.strip().splitlines() or [""])[-1][:300]
    return result


def _weights(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(W (n_features + 1, classes), classes)`` of a saved model, read without pool3."""
    with np.load(model_dir / "classifier.npz", allow_pickle=False) as npz:
        coef, intercept = npz["coef"].astype(np.float64), npz["intercept"].astype(np.float64)
    classes = np.asarray(json.loads((model_dir / "classifier.json").read_text())["classes"])
    return np.vstack([coef.T, intercept[None, :]]), classes


def agreement(table: Path, dirs: list[Path], rows: int = 50_000) -> list[tuple[float, float]]:
    """Per model: predictions agreeing with the first model's on the table's first ``rows``
    rows, and the relative difference of the weights."""
    part = sorted(table.glob("*.parquet"))[0]
    feats = pq.read_table(part, columns=["features"]).slice(0, rows)
    flat = feats.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    X = flat.reshape(len(feats), -1).astype(np.float64)
    models = [_weights(d) for d in dirs]
    W0, classes = models[0]
    pred0 = classes[np.argmax(X @ W0[:-1] + W0[-1], axis=1)]
    out = []
    for W, cl in models:
        pred = cl[np.argmax(X @ W[:-1] + W[-1], axis=1)]
        out.append(
            (float(np.mean(pred == pred0)), float(np.linalg.norm(W - W0) / np.linalg.norm(W0)))
        )
    return out


def _median(runs: list[dict[str, Any]], key: str) -> Any:
    found = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return median(found) if found else "-"


def _ratio(a: Any, b: Any) -> str:
    return f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) and b else "-"


def _row(n: int, name: str, runs: list[dict[str, Any]], first: list[dict[str, Any]]) -> list[Any]:
    """One table row: a solver's medians at one size, and its walls against the first's."""
    med = {k: _median(runs, k) for k in {k for r in runs for k in r} - {"solver", "error"}}
    others = sum(med[k] for k in ("dups_s", "thumbs_s", "rest_s") if med.get(k, "-") != "-")
    return [
        n, name, runs[0].get("solver", "-"), "/".join(str(r["rc"]) for r in runs),
        med["total_s"], med.get("prepare_s", "-"), med.get("read_s", "-"), med.get("fit_s", "-"),
        med.get("search_s", "-"), med.get("jobs", "-"), med.get("fit_jobs", "-"),
        med.get("driver_passes", "-"), med.get("steps", "-"), med.get("cg", "-"),
        med.get("cg_jobs", "-"),
        med.get("held", "-"), med.get("shipped_mb", "-"), med.get("dups_s", "-"),
        f"{runs[0].get('exact', '-')} / {n // 100}", med.get("rest_s", "-"),
        _ratio(others, med.get("fit_s")), _ratio(med.get("fit_s"), _median(first, "fit_s")),
        _ratio(med["total_s"], _median(first, "total_s")), med.get("accuracy", "-"),
        med.get("C", "-"), round(med["tree_mb"]), round(med["driver_mb"]), round(med["jvm_mb"]),
        "; ".join(r["error"] for r in runs if r.get("error")),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--features", required=True, help="a real pool3 feature table")
    p.add_argument("--rows", default="50000,200000")
    p.add_argument("--spread", type=float, default=1.5)
    p.add_argument("--solvers", default="default", help="comma list; 'default': the config's")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="pool3 --set, repeatable")
    p.add_argument("--conf", default=None, help="pool3 --conf profile")
    p.add_argument(
        "--work", default=None, help="folder for the tables, models and logs (default: temp)"
    )
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="pool3-train-scale-"))
    solvers = [s for s in args.solvers.split(",") if s]
    base = [*(["--conf", args.conf] if args.conf else [])]
    for setting in args.set:
        base += ["--set", setting]
    before = calibrate()
    rows, agree_rows = [], []
    for n in [int(x) for x in args.rows.split(",") if x]:
        table = work / f"table-{n}"
        if not (table / "_SUCCESS").exists():
            gen = [sys.executable, str(HERE / "tablegen.py"), "--features", args.features]
            gen += ["--rows", str(n), "--classes", "48", "--spread", str(args.spread)]
            gen += ["--exact-copies", str(n // 100), "--out", str(table)]
            subprocess.run(gen, check=True)
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in solvers}
        for r in range(args.rounds):
            for s in solvers if r % 2 == 0 else solvers[::-1]:
                extra = base + ([] if s == "default" else ["--solver", s])
                print(f"pool3 train on {n} rows, {s}, round {r + 1} ...", flush=True)
                keep = work / f"train-{n}-{s}-{r + 1}.log"
                result = run_train(table, work / f"model-{n}-{s}", extra, keep)
                print(result, flush=True)
                runs[s].append(result)
        first = runs[solvers[0]]
        rows += [_row(n, name, runs[name], first) for name in solvers]
        done = [s for s in solvers if (work / f"model-{n}-{s}" / "classifier.npz").exists()]
        if len(done) > 1:
            found = agreement(table, [work / f"model-{n}-{s}" for s in done])
            for name, (same, diff) in zip(done, found, strict=True):
                agree_rows.append([n, f"{name} vs {done[0]}", 100 * same, 100 * diff])
    after = calibrate()
    header = [
        "rows", "run", "solver", "rc", "total s", "prepare s", "read s", "fit s", "C search s",
        "jobs", "fit jobs", "passes on the driver", "Newton steps", "CG steps", "CG as jobs",
        "active rows held",
        "MB shipped", "duplicates s", "exact found / planted", "rest s", "others / fit",
        "fit x first", "total x first", "accuracy %", "C", "tree MB", "driver MB", "JVM MB",
        "error",
    ]  # fmt: skip
    sections = [("Phases (medians over the rounds)", md_table(header, rows))]
    if agree_rows:
        sections.append(
            (
                "Model agreement",
                md_table(["rows", "models", "same prediction %", "weights differ %"], agree_rows),
            )
        )
    append_results(
        "Training end to end (pool3 train)",
        before=before,
        after=after,
        sections=sections,
        notes=[
            f"Tables: bench/tablegen.py, 48 classes, spread {args.spread}, rows/100 exact "
            f"copies, from {args.features}. Runs: {', '.join(solvers)} x {args.rounds} "
            f"round(s), alternated; pool3 train {' '.join(base) or 'with defaults'}.",
            "jobs: the whole run's Spark jobs (event log); fit jobs: the Newton solver's "
            "passes that were Spark jobs; passes on the driver: the others (newton: all; "
            "spark: those after the driver held every training row). others = duplicates "
            "+ thumbnails + rest.",
        ],
        write=not args.no_write,
    )
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
