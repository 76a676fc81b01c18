"""Tables and target checks of featurize_bench (kept apart from the measuring code)."""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

import numpy as np

from common import GFLOP_PER_IMAGE, Calibration, append_results, md_table, mean_calibration

LABELS = {
    "tutorial": "(a) tutorial: sess.run per JPEG",
    "float32": "(b) pool3 batched, float32",
    "bfloat16": "(b) pool3 batched, bfloat16",
}


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _inproc_table(
    inproc: dict[str, Any], warm: dict[str, float], build: dict[str, float], gflops: float
) -> str:
    rows = []
    for name, s in inproc.items():
        rates = s["rates"]
        rows.append(
            [
                LABELS[name],
                s["images"],
                round(s["ips"], 2),
                f"{statistics.median(rates):.2f} [{min(rates):.2f}-{max(rates):.2f}]",
                f"{100 * s['prep'] / s['seconds']:.0f}%",
                round(GFLOP_PER_IMAGE * s["ips"] / gflops, 2),
                round(build[name], 1),
                round(warm[name], 1),
                round(float(np.mean(s["loads"])), 2),
            ]
        )
    header = [
        "variant",
        "images",
        "images/s",
        "per-chunk images/s median [min-max]",
        "decode+resize share",
        "utilisation",
        "model build s",
        "first chunk s",
        "load avg",
    ]
    return md_table(header, rows)


def _spark_table(rounds: list[dict[str, Any]], parallel: int) -> str:
    rows = []
    for i, r in enumerate(rounds, 1):
        run, b = r["spark"], r["b_ips"]
        rows.append(
            [
                i,
                run.images,
                round(run.wall_s, 1),
                round(run.end_to_end_ips, 2),
                round(run.phase_ips, 2),
                round(run.busy_ips(parallel), 2),
                round(b, 2),
                round(run.end_to_end_ips / b, 2),
                round(run.phase_ips / b, 2),
                round(run.busy_ips(parallel) / b, 2),
                round(float(run.memory["worker_max_mb"])),
                int(run.memory["workers"]),
                round(float(run.memory["driver_mb"])),
                round(float(run.memory["jvm_mb"])),
                f"{run.loadavg[0]:.1f}/{run.loadavg[1]:.1f}",
            ]
        )
    header = [
        "run",
        "images",
        "wall s",
        "end-to-end img/s",
        "featurize-phase img/s",
        "busy img/s",
        "(b) f32 img/s next",
        "e2e/(b)",
        "phase/(b)",
        "busy/(b)",
        "worker peak RSS MB",
        "workers",
        "driver peak MB",
        "JVM peak MB",
        "load start/end",
    ]
    return md_table(header, rows)


def report(
    args: argparse.Namespace,
    *,
    before: Calibration,
    middle: Calibration,
    after: Calibration,
    inproc: dict[str, Any],
    warm: dict[str, float],
    build: dict[str, float],
    fidelity: list[dict[str, Any]],
    agree_min: float,
    probe: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
) -> None:
    gflops = mean_calibration(before, middle)  # the calibrations around the in-process phase
    a, b32, b16 = (inproc[v]["ips"] for v in ("tutorial", "float32", "bfloat16"))
    util32 = GFLOP_PER_IMAGE * b32 / gflops
    min_cos = min(float(f["cos"].min()) for f in fidelity)
    sections = [
        (
            f"In-process variants on the same {args.n} JPEGs, alternated every {args.chunk} "
            f"images (utilisation = {GFLOP_PER_IMAGE} GFLOP x images/s / {gflops:.1f} GFLOP/s)",
            _inproc_table(inproc, warm, build, gflops),
        ),
        (
            "Same-run ratios",
            md_table(
                ["ratio", "value"],
                [
                    ["(b) float32 / (a) tutorial", round(b32 / a, 2)],
                    ["(b) bfloat16 / (a) tutorial", round(b16 / a, 2)],
                    ["bfloat16 / float32", round(b16 / b32, 2)],
                ],
            ),
        ),
        (
            "bfloat16 vs float32 features (cosine per image)",
            md_table(
                ["images", "n", "min cosine", "mean cosine", "share < 0.999", "max abs diff"],
                [
                    [
                        f["set"],
                        f["n"],
                        f"{f['cos'].min():.5f}",
                        f"{f['cos'].mean():.5f}",
                        f"{np.mean(f['cos'] < 0.999):.2%}",
                        f"{f['maxabs']:.3g}",
                    ]
                    for f in fidelity
                ],
            ),
        ),
    ]
    targets = [
        ["(b) >= 1.5 x (a), float32", f"{b32 / a:.2f}x", _ok(b32 / a >= 1.5)],
        ["float32 utilisation >= 0.7", f"{util32:.2f}", _ok(util32 >= 0.7)],
        ["bfloat16 >= 2 x float32", f"{b16 / b32:.2f}x", _ok(b16 / b32 >= 2)],
        ["bfloat16 cosine >= 0.999 (real images)", f"min {min_cos:.5f}", _ok(min_cos >= 0.999)],
    ]
    notes = [
        f"Tutorial graph vs pool3 float32 on the generated JPEGs: min cosine {agree_min:.5f} "
        "(graph decodes with TF's DecodeJpeg INTEGER_ACCURATE, pool3 with Pillow).",
        "Variants run in separate processes, one at a time (2 TF intra-op threads for (b); "
        "the tutorial's TF1 Session uses its default, all cores). 'first chunk' is the "
        "warm-up chunk, not counted in images/s.",
    ]
    if probe:
        sections.append(
            (
                "Start-up probe (fresh process, seconds since its first statement; "
                "warm-up = featurize.warm_up)",
                md_table(
                    [
                        "warm-up",
                        "imports",
                        "session built",
                        "model bytes on driver",
                        "input listed",
                        "workers warm",
                        "first batch back",
                        "second batch back",
                        "process wall",
                        "load",
                    ],
                    [
                        [
                            "on" if p.get("warm_up", True) else "off",
                            p["imports"],
                            p["session"],
                            p["bundle"],
                            p.get("listed", ""),
                            p.get("warm", ""),
                            p["first_batch"],
                            p["second_batch"],
                            p["process_wall"],
                            round(p["load"], 2),
                        ]
                        for p in probe
                    ],
                ),
            )
        )
        on = [p["first_batch"] for p in probe if p.get("warm_up", True)]
        best = statistics.median(on) if on else statistics.median(p["first_batch"] for p in probe)
        session = statistics.median(p["session"] for p in probe)
        targets.append(
            [
                "start-up (session + model to first batch) <= 10 s",
                f"{best:.1f} s (median, warm-up on; of which session {session:.1f} s)",
                _ok(best <= 10),
            ]
        )
    if rounds:
        parallel = os.cpu_count() or 1
        sections.append(
            (
                f"Spark `pool3 featurize --conf local` (local[*], {args.spark_precision}), "
                "each followed by a (b) float32 pass on the same images",
                _spark_table(rounds, parallel),
            )
        )
        e2e = statistics.median(r["spark"].end_to_end_ips / r["b_ips"] for r in rounds)
        phase = statistics.median(r["spark"].phase_ips / r["b_ips"] for r in rounds)
        busy = statistics.median(r["spark"].busy_ips(parallel) / r["b_ips"] for r in rounds)
        rss = max(float(r["spark"].memory["worker_max_mb"]) for r in rounds)
        targets += [
            [
                "Spark steady state >= 0.9 x (b)",
                f"phase {phase:.2f}, busy {busy:.2f}",
                _ok(phase >= 0.9),
            ],
            [f"Spark end to end at {args.n} images >= 0.8 x (b)", f"{e2e:.2f}", _ok(e2e >= 0.8)],
            ["peak RSS per Python worker <= 2 GB", f"{rss:.0f} MB", _ok(rss <= 2048)],
        ]
        notes += [
            "e2e = images / wall time of the CLI process; phase = the job summary's "
            "images_per_second (inference + Parquet write, after the workers' warm-up, which "
            "overlaps the listing; without warm-up it includes the model build); busy = "
            f"images / ((decode + inference seconds summed over workers) / {parallel}).",
            f"Batch sizing logged by the job: {rounds[0]['spark'].batch_log[-1:] or 'n/a'}.",
        ]
    sections.append(
        ("Targets of issue 6 (this run)", md_table(["target", "measured", "met"], targets))
    )
    notes.append(
        f"Utilisation uses the calibrations before and right after the in-process phase "
        f"({before.median_gflops:.1f} and {middle.describe()})."
    )
    append_results(
        f"Featurization, {args.n} images{' (quick)' if args.quick else ''}",
        before=before,
        after=after,
        sections=sections,
        notes=notes,
        write=not args.no_write,
    )
