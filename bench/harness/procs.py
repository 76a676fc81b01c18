"""A pool3 command as a fresh process, measured from outside: wall, its JSON summary, log,
and the peak memory of its process tree by role, sampled from ``/proc``.

Roles: the root is the ``driver``; ``java`` the ``jvm``; ``python -m pyspark.daemon`` (or
pool3's) the ``daemon``; what the daemon forks are ``worker``s (they run the model). Per
process the largest ``VmHWM`` (the kernel's own peak, so spikes between samples are not
lost); ``tree_mb`` is the largest sum of the tree's resident sets at one sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _kb(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


class TreeSampler:
    """Samples the tree under ``root`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root, self.interval = root, interval
        self.roles: dict[int, str] = {}
        self.hwm: dict[int, int] = {}
        self.tree_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _role(self, pid: int, parent: str) -> str:
        if pid == self.root:
            return "driver"
        if parent in ("daemon", "worker"):
            return "worker"
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return "other"
        if "java" in cmd.split(" ", 1)[0]:
            return "jvm"
        return "daemon" if ".daemon" in cmd else "other"

    def sample(self) -> None:
        kids: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (ppid := _status(int(entry.name)).get("PPid")):
                kids.setdefault(int(ppid), []).append(int(entry.name))
        stack, total = [(self.root, "")], 0
        while stack:
            pid, parent = stack.pop()
            role = self._role(pid, parent)  # every time: a forked process may exec later
            if self.roles.get(pid, role) != role:
                self.hwm[pid] = 0  # exec resets VmHWM: the peak of what it is now
            self.roles[pid] = role
            st = _status(pid)
            self.hwm[pid] = max(self.hwm.get(pid, 0), _kb(st.get("VmHWM")))
            total += _kb(st.get("VmRSS"))
            stack += [(c, role) for c in kids.get(pid, [])]
        self.tree_kb = max(self.tree_kb, total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, float]:
        """Stop; peak MB by role (``driver_mb``, ``jvm_mb``, ``worker_max_mb``, ...)."""
        self._stop.set()
        self._thread.join()
        out: dict[str, float] = {"tree_mb": self.tree_kb / 1024}
        for role in ("driver", "jvm", "daemon", "worker"):
            peaks = [self.hwm[p] for p, r in self.roles.items() if r == role]
            out[f"{role}_max_mb" if role == "worker" else f"{role}_mb"] = max(peaks or [0]) / 1024
        out["workers"] = sum(r == "worker" for r in self.roles.values())
        return out


def pool3(
    args: list[str], *, log: Path, env: dict[str, str] | None = None, timeout: float = 7200
) -> dict[str, Any]:
    """Run ``python -m pool3.cli ARGS`` (``--log-format json`` for featurize): ``wall_s``,
    ``summary`` (the last stdout line as JSON, {} if none), memory peaks, ``rc``; the log
    (stderr) goes to ``log``. Raises RuntimeError with the log's tail if it fails."""
    cmd = [sys.executable, "-m", "pool3.cli", *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    start = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        sampler = TreeSampler(proc.pid)
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        finally:
            memory = sampler.stop()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stdout}\n{tail}")
    lines = stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        summary = {}
    return {"wall_s": wall, "summary": summary, "rc": proc.returncode, **memory}


def featurize_figures(run: dict[str, Any], slots: int | None = None) -> dict[str, Any]:
    """A ``pool3 featurize`` run's figures: end-to-end and phase rates, busy rate, the fixed
    cost two ways (wall - the featurize job: ``outside_s``; wall - busy: ``fixed_s``), the
    summary's start-up ``timings`` (``<phase>_s``), memory peaks."""
    s, wall = run["summary"], run["wall_s"]
    slots = slots or os.cpu_count() or 1
    images = int(s.get("images", 0))
    second = (
        "prefetch_wait_seconds" if s.get("prefetch_wait_seconds") is not None else "decode_seconds"
    )
    busy = (float(s.get("inference_seconds", 0)) + float(s.get(second, 0))) / slots
    out = {
        "wall_s": wall,
        "e2e_ips": images / wall,
        "phase_ips": float(s.get("images_per_second", 0.0)),
        "busy_ips": images / busy if busy else None,
        "fixed_s": wall - busy if busy else None,
        "outside_s": wall - float(s["featurize_seconds"]) if "featurize_seconds" in s else None,
        "job_s": s.get("featurize_seconds"),
        "batch_size": s.get("batch_size"),
        "ran": f"{s.get('runtime')} {s.get('precision')}",
    }
    out |= {f"{k}_s": float(v) for k, v in (s.get("timings") or {}).items()}
    return out | {k: v for k, v in run.items() if k.endswith("_mb") or k == "workers"}
