"""Shared benchmark plumbing: machine info, compute calibration, results appender.

Calibration
    A float32 matrix multiply (2048 x 2048 @ 2048 x 2048, ``numpy.matmul`` on OpenBLAS)
    limited to 2 BLAS threads with ``threadpoolctl``; GFLOP/s = 2 n^3 / seconds. It runs in
    windows of ``window_s`` seconds; we keep the median and the best window. Each benchmark
    calibrates before and after its measurements: the machines are virtual and their speed
    drifts, so absolute figures are only meaningful beside their calibration, and the
    headline figures are ratios of variants measured alternately in the same run.

Results
    :func:`append_results` appends a markdown section (title, exact command, date, machine,
    both calibrations, load averages, table, notes) to ``bench/RESULTS.md`` and prints it.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
#: Inception-v3 forward pass at 299 x 299, multiply-adds counted as 2 FLOP.
GFLOP_PER_IMAGE = 11.4


@dataclass(frozen=True)
class Calibration:
    """2-thread float32 matmul speed at one moment."""

    median_gflops: float
    best_gflops: float
    windows: int
    loadavg: float
    when: str

    def describe(self) -> str:
        return (
            f"{self.median_gflops:.1f} GFLOP/s median, {self.best_gflops:.1f} best "
            f"({self.windows} windows, load {self.loadavg:.2f}, {self.when})"
        )


def calibrate(*, n: int = 2048, windows: int = 5, window_s: float = 0.6) -> Calibration:
    """Measure the 2-thread float32 matmul speed (numpy/OpenBLAS via threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    speeds = []
    with threadpool_limits(limits=2):
        a @ b  # warm-up: thread pool start, page faults
        for _ in range(windows):
            count, start = 0, time.perf_counter()
            while True:
                a @ b
                count += 1
                elapsed = time.perf_counter() - start
                if elapsed >= window_s:
                    break
            speeds.append(2 * n**3 * count / elapsed / 1e9)
    return Calibration(
        median_gflops=statistics.median(speeds),
        best_gflops=max(speeds),
        windows=windows,
        loadavg=os.getloadavg()[0],
        when=now(),
    )


def now() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def load1() -> float:
    """1-minute load average (other processes compete for the 2 cores when it is > ~2)."""
    return os.getloadavg()[0]


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or "unknown", set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("unknown", "", "x86_64"):
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed, or metadata unreadable: say so in the table
        return "n/a"


@dataclass(frozen=True)
class MachineInfo:
    cpu: str
    cores: int
    memory_gib: float
    simd: tuple[str, ...]
    versions: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        flags = ", ".join(self.simd) or "none of avx512f/avx512_bf16/amx"
        vers = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return (
            f"{self.cpu}, {self.cores} cores, {self.memory_gib:.1f} GiB; flags: {flags}; "
            f"{platform.system()} {platform.release()}; {vers}"
        )


def machine_info() -> MachineInfo:
    model, flags = _cpuinfo()
    wanted = (
        "avx2",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "avx_vnni",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
    )
    versions = {"python": platform.python_version()}
    for pkg in (
        "numpy",
        "tensorflow-cpu",
        "tensorflow",
        "openvino",
        "nncf",
        "pyspark",
        "scikit-learn",
        "pillow",
    ):
        v = _version(pkg)
        if v != "n/a":
            versions[pkg] = v
    return MachineInfo(
        cpu=model,
        cores=os.cpu_count() or 0,
        memory_gib=_mem_total_gib(),
        simd=tuple(f for f in wanted if f in flags),
        versions=versions,
    )


def command_line() -> str:
    """The exact command that ran this benchmark (interpreter and arguments)."""
    return shlex.join([sys.executable, *sys.argv])


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def append_results(
    title: str,
    *,
    before: Calibration,
    after: Calibration,
    sections: Sequence[tuple[str, str]],
    notes: Sequence[str] = (),
    path: Path = RESULTS,
    write: bool = True,
) -> str:
    """Append one benchmark run to ``bench/RESULTS.md`` (and print it); returns the text.

    ``sections`` are ``(heading, markdown table)`` pairs.
    """
    info = machine_info()
    parts = [
        f"## {title} ({now()})",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Machine: {info.describe()}",
        "",
        "Calibration (2-thread float32 matmul, numpy/OpenBLAS 2048^3 via threadpoolctl): "
        f"before {before.describe()}; after {after.describe()}.",
        "",
    ]
    for heading, table in sections:
        parts += [f"**{heading}**", "", table, ""]
    if notes:
        parts += [f"- {n}" for n in notes] + [""]
    text = "\n".join(parts) + "\n"
    print(text)
    if write:
        if not path.exists():
            path.write_text(
                "# Benchmark results\n\nAppended by `bench/*.py`; see bench/README.md.\n\n"
            )
        with path.open("a") as fh:
            fh.write(text)
    return text


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (N, D) feature arrays (float64 accumulation)."""
    num = np.sum(a.astype(np.float64) * b, axis=1)
    return num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def mean_calibration(before: Calibration, after: Calibration) -> float:
    """Median GFLOP/s averaged over the two calibrations: the denominator of utilisation."""
    return (before.median_gflops + after.median_gflops) / 2


if __name__ == "__main__":
    print(machine_info().describe())
    print(calibrate().describe())
