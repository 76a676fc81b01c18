"""Peak memory of a process tree (a pool3 CLI run: Python driver -> JVM -> pyspark.daemon ->
Python workers), sampled from ``/proc`` by a background thread.

For every descendant of the root pid we keep the largest ``VmHWM`` (the kernel's own peak
resident set of that process, so short spikes between samples are not lost) and ``VmRSS``
seen. Roles come from the command line and the parent: the root is the ``driver``; a
``java`` process is the ``jvm``; ``python -m pyspark.daemon`` is the ``daemon``; processes
forked by the daemon are ``worker``s (Spark's Python workers, which run the model).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ProcPeak:
    pid: int
    role: str
    hwm_kb: int = 0
    rss_kb: int = 0
    samples: int = 0


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    except OSError:
        pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        ppid = _status(int(entry.name)).get("PPid")
        if ppid is not None:
            kids.setdefault(int(ppid), []).append(int(entry.name))
    return kids


def _kb(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


@dataclass
class TreeSampler:
    """Samples the tree under ``root`` every ``interval`` seconds until :meth:`stop`."""

    root: int
    interval: float = 0.25
    peaks: dict[int, ProcPeak] = field(default_factory=dict)
    #: the largest sum of the tree's resident sets at one sample (the whole tree's peak),
    #: and when it was sampled (``time.time()``: to place it among a log's lines)
    tree_kb: int = 0
    tree_at: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="procmem")

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _role(self, pid: int, parent_role: str) -> str:
        if pid == self.root:
            return "driver"
        cmd = _cmdline(pid)
        if parent_role in ("daemon", "worker"):
            return "worker"
        if "pyspark.daemon" in cmd:
            return "daemon"
        if "java" in cmd.split(" ", 1)[0]:
            return "jvm"
        return "other"

    def sample(self) -> None:
        kids = children()
        stack = [(self.root, "")]
        total_kb = 0
        while stack:
            pid, parent_role = stack.pop()
            known = self.peaks.get(pid)
            # A launcher script may exec java later: re-check processes not yet recognised.
            role = known.role if known and known.role != "other" else self._role(pid, parent_role)
            st = _status(pid)
            if st:
                peak = self.peaks.setdefault(pid, ProcPeak(pid, role))
                peak.role = role
                peak.hwm_kb = max(peak.hwm_kb, _kb(st.get("VmHWM")))
                peak.rss_kb = max(peak.rss_kb, _kb(st.get("VmRSS")))
                peak.samples += 1
                total_kb += _kb(st.get("VmRSS"))
            stack += [(c, role) for c in kids.get(pid, [])]
        if total_kb > self.tree_kb:
            self.tree_kb, self.tree_at = total_kb, time.time()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, float | int]:
        """Peak MB by role: driver, jvm, daemon, worker_max (and the number of workers)."""

        def mb(kb: int) -> float:
            return kb / 1024

        by_role: dict[str, list[ProcPeak]] = {}
        for p in self.peaks.values():
            by_role.setdefault(p.role, []).append(p)
        workers = by_role.get("worker", [])
        return {
            "driver_mb": mb(max((p.hwm_kb for p in by_role.get("driver", [])), default=0)),
            "jvm_mb": mb(max((p.hwm_kb for p in by_role.get("jvm", [])), default=0)),
            "daemon_mb": mb(max((p.hwm_kb for p in by_role.get("daemon", [])), default=0)),
            "worker_max_mb": mb(max((p.hwm_kb for p in workers), default=0)),
            "worker_rss_max_mb": mb(max((p.rss_kb for p in workers), default=0)),
            "workers": len(workers),
            "tree_mb": mb(self.tree_kb),
        }
