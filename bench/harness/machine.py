"""The machine's facts and speed at the moment of a run.

Facts: CPU model, cores, memory, every flag of ``/proc/cpuinfo`` (and the few that decide
pool3's speed: AVX-512, bfloat16, VNNI, AMX), the package versions, the git commit.

Calibration: a 2048 x 2048 float32 matrix multiply (numpy/OpenBLAS) limited to 2 BLAS
threads with ``threadpoolctl``, in 0.6 s windows; median and best GFLOP/s (2 n^3 / s). The
machines are virtual and drift: absolute figures mean something only beside it, and the
headline figures are ratios of variants alternated in the same run.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

#: CPU flags that decide or explain speed, listed first in every record.
KEY_FLAGS = (
    "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16",
    "amx_int8",
)  # fmt: skip
PACKAGES = (
    "numpy", "tensorflow-cpu", "tensorflow", "openvino", "nncf", "pyspark", "scikit-learn",
    "pillow", "pyarrow",
)  # fmt: skip
REPO = Path(__file__).resolve().parents[2]


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", list[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = value.split()
    return model, flags


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def commit() -> str:
    """``git describe``-like: the HEAD commit, ``+dirty`` when bench/ or lib/ has changes."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "lib", "bench") else "")


def machine_facts() -> dict[str, Any]:
    model, flags = _cpuinfo()
    versions = {"python": platform.python_version()}
    for pkg in PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            versions[pkg] = version(pkg)
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "memory_gib": _memory_gib(),
        "key_flags": [f for f in KEY_FLAGS if f in flags],
        "flags": flags,
        "os": f"{platform.system()} {platform.release()}",
        "host": platform.node(),
        "versions": versions,
    }


def describe(facts: dict[str, Any]) -> str:
    flags = ", ".join(facts["key_flags"]) or "no AVX-512/bfloat16/AMX"
    return f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB; {flags}"


def calibrate(*, n: int = 2048, windows: int = 5, window_s: float = 0.6) -> dict[str, float]:
    """2-thread float32 matmul speed: median and best GFLOP/s over the windows, and load."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    speeds = []
    with threadpool_limits(limits=2):
        a @ b  # warm-up: thread pool start, page faults
        for _ in range(windows):
            count, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < window_s or not count:
                a @ b
                count += 1
            speeds.append(2 * n**3 * count / elapsed / 1e9)
    return {
        "median_gflops": round(statistics.median(speeds), 1),
        "best_gflops": round(max(speeds), 1),
        "load": round(os.getloadavg()[0], 2),
    }
