"""Run ``pool3 featurize`` as a fresh process and measure it from outside.

The process is the one a user starts (``python -m pool3.cli featurize --conf local ...``,
``local[*]``): its wall time includes interpreter and JVM start, the Spark session, the
model broadcast, worker start-up, featurization, the Parquet write and the commit. While
it runs, :class:`procmem.TreeSampler` records the peak memory of its driver, JVM and
Python workers.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procmem import TreeSampler


@dataclass
class CliRun:
    command: str
    wall_s: float
    summary: dict[str, Any]
    memory: dict[str, float | int]
    loadavg: tuple[float, float] = (0.0, 0.0)  # 1-min load at start and end
    batch_log: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return int(self.summary.get("images", 0))

    @property
    def end_to_end_ips(self) -> float:
        return self.images / self.wall_s

    @property
    def phase_ips(self) -> float:
        """The summary's ``images_per_second``: images / featurize phase (inference and the
        Parquet write; the workers' model build too when ``featurize.warm_up`` is off)."""
        return float(self.summary.get("images_per_second", 0.0))

    @property
    def timings(self) -> dict[str, float]:
        """The summary's start-up breakdown (``timings``: seconds by phase), {} if absent."""
        return {k: float(v) for k, v in (self.summary.get("timings") or {}).items()}

    def busy_seconds(self, parallel: int) -> float:
        """Workers' busy seconds / ``parallel``: the wall the computing would take on
        ``parallel`` task slots, without start-up, scheduling or the write. Busy is
        inference + the waits for a prepared batch where the summary has them (prefetch:
        decode overlaps inference), else decode + inference."""
        s = self.summary
        waited = s.get("prefetch_wait_seconds") is not None  # None: run without prefetch
        second = "prefetch_wait_seconds" if waited else "decode_seconds"
        busy = float(s.get("inference_seconds", 0)) + float(s.get(second, 0))
        return busy / parallel

    def busy_ips(self, parallel: int) -> float:
        """Images / :meth:`busy_seconds`: the rate while ``parallel`` workers are computing."""
        busy = self.busy_seconds(parallel)
        return self.images / busy if busy else 0.0


def featurize_cli(
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    log_path: str | Path,
    conf: str = "local",
    extra: tuple[str, ...] = (),
    timeout: float = 3600,
    env: dict[str, str] | None = None,
) -> CliRun:
    """Run ``pool3 featurize`` once; raise RuntimeError (with the log's tail) if it fails.
    ``env``: variables added to this process's environment for the run."""
    cmd = [
        sys.executable,
        "-m",
        "pool3.cli",
        "featurize",
        "--conf",
        conf,
        "--input",
        str(input_dir),
        "--output",
        str(output_dir),
        "--log-format",
        "json",
        *extra,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        sampler = TreeSampler(proc.pid).start()
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        finally:
            sampler.stop()
    wall = time.perf_counter() - start
    log_text = Path(log_path).read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(log_text.splitlines()[-30:])
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{stdout}\n{tail}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    batch_lines = [ln for ln in log_text.splitlines() if "batch size" in ln and "featurize:" in ln]
    return CliRun(
        command=shlex.join(cmd),
        wall_s=wall,
        summary=summary,
        memory=sampler.summary(),
        loadavg=(load0, os.getloadavg()[0]),
        batch_log=batch_lines,
    )
