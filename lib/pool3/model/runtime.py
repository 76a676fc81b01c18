"""Which runtime and precision a run uses, decided once from what the executors report.

A driver often runs on other hardware than its executors (a laptop or a small VM driving a
cluster of AMX servers, or the reverse), so ``model.runtime = "auto"`` and
``model.precision = "auto"`` are resolved from :class:`HostReport`\\ s that a tiny Spark job
collects in the Python workers (:func:`pool3.extraction.shipping.probe_executors`), never from
the driver's own CPU. The result, a :class:`Placement`, is logged, written to the manifest and
recorded with every feature row; one run uses one runtime and one precision everywhere.

Rules (``resolve``):

- runtime ``auto``: TensorFlow where the executors have a GPU (the GPU path), else OpenVINO
  where every reporting host has it installed, else TensorFlow (with a warning).
- precision ``auto``: float32 on GPUs; on CPUs bfloat16 where every reporting host runs it
  natively (AMX-BF16 or AVX-512-BF16), else float32. Mixed hosts get float32.
- ``bfloat16`` asked for on a host without native bfloat16, or on GPU executors, is refused
  (both runtimes would quietly compute float32 there, and the rows would say bfloat16); the
  OpenVINO worker also checks the precision it compiled for, in case a host was not probed
  (:func:`pool3.model.openvino_runtime.compile_ir`); ``int8`` runs on OpenVINO only; the
  chosen runtime must be installed on every reporting host.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pool3.errors import ConfigError

log = logging.getLogger(__name__)

#: CPU flags that decide or explain speed; reported by every probe and benchmark.
REPORTED_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The :data:`REPORTED_FLAGS` this CPU has (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return tuple(f for f in REPORTED_FLAGS if f in have)
    return ()


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def tensorflow_version() -> str | None:
    """The installed TensorFlow distribution's version (CPU or GPU build), or None."""
    return _installed("tensorflow-cpu") or _installed("tensorflow")


@dataclass(frozen=True)
class HostReport:
    """What one Python worker says about its host (cheap: imports no ML library)."""

    host: str
    cpu: str
    flags: tuple[str, ...]
    cores: int
    gpus: int
    openvino: str | None
    tensorflow: str | None

    @property
    def native_bf16(self) -> bool:
        return any(f in self.flags for f in NATIVE_BF16)


def this_host(gpu_addresses: Sequence[str] = ()) -> HostReport:
    """This process's host. ``gpu_addresses``: GPUs Spark gave the task, if any.

    Without Spark GPU scheduling, a visible NVIDIA device (``/dev/nvidia0``, not hidden by
    ``CUDA_VISIBLE_DEVICES``) counts as one GPU.
    """
    gpus = len(gpu_addresses)
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1")
    if not gpus and os.path.exists("/dev/nvidia0") and not hidden:
        gpus = 1
    return HostReport(
        host=socket.gethostname(),
        cpu=cpu_model(),
        flags=cpu_flags(),
        cores=os.cpu_count() or 1,
        gpus=gpus,
        openvino=_installed("openvino"),
        tensorflow=tensorflow_version(),
    )


@dataclass(frozen=True)
class Placement:
    """The resolved runtime and precision of a run, and why."""

    runtime: str
    precision: str
    reason: str
    hosts: tuple[HostReport, ...] = ()
    #: int8 only: the calibration images (``id``, ``images``, ``paths``, ``settings``)
    calibration: dict[str, Any] | None = None

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "runtime": self.runtime,
            "precision": self.precision,
            "reason": self.reason,
            "hosts": [asdict(h) for h in self.hosts],
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out


def _names(hosts: Sequence[HostReport]) -> str:
    return ", ".join(sorted({f"{h.host} ({h.cpu})" for h in hosts})) or "none"


def resolve(runtime: str, precision: str, hosts: Sequence[HostReport]) -> Placement:
    """Resolve ``model.runtime`` and ``model.precision`` for ``hosts`` (see the module doc)."""
    hosts = tuple(dict.fromkeys(hosts))  # one per distinct report, order kept
    if not hosts:
        raise ConfigError("no executor reported its hardware: cannot choose runtime/precision")
    gpu = all(h.gpus > 0 for h in hosts)
    no_ov = [h for h in hosts if h.openvino is None]
    why = []
    if runtime == "auto":
        if precision == "int8":
            runtime, w = "openvino", "int8 runs on OpenVINO"
        elif gpu:
            runtime, w = "tensorflow", "the executors have GPUs"
        elif no_ov:
            runtime, w = "tensorflow", f"OpenVINO is not installed on {_names(no_ov)}"
            log.warning("model.runtime=auto: %s; running TensorFlow (pip install openvino)", w)
        else:
            runtime, w = "openvino", "CPU executors"
        why.append(f"runtime {runtime}: {w}")
    no_tf = [h for h in hosts if h.tensorflow is None]
    if runtime == "tensorflow" and no_tf:
        raise ConfigError(
            f"model.runtime={runtime} needs TensorFlow, which is not installed on "
            f"{_names(no_tf)}: install pool3[cpu] (or [gpu]) there, or use --runtime openvino"
        )
    if runtime == "openvino" and no_ov:
        raise ConfigError(
            f"model.runtime=openvino, but OpenVINO is not installed on {_names(no_ov)}: "
            "install pool3's requirements there (pip install openvino), or use "
            "--runtime tensorflow"
        )
    on_gpu = runtime == "tensorflow" and gpu
    slow = [h for h in hosts if not h.native_bf16]
    if precision == "auto":
        if on_gpu:
            precision, w = "float32", "GPU"
        elif slow:
            precision, w = "float32", f"no native bfloat16 on {_names(slow)}"
        else:
            precision, w = "bfloat16", "every executor has AMX-BF16 or AVX-512-BF16"
        why.append(f"precision {precision}: {w}")
    elif precision == "bfloat16" and on_gpu:
        raise ConfigError(
            "model.precision=bfloat16 is a CPU precision (oneDNN/OpenVINO); on GPU executors "
            "TensorFlow would compute float32 while the rows said bfloat16: use --precision "
            "auto or float32 there"
        )
    elif precision == "bfloat16" and slow:
        raise ConfigError(
            f"model.precision=bfloat16, but {_names(slow)} has no native bfloat16 (AMX-BF16 or "
            "AVX-512-BF16): the model would run float32 there while its rows said bfloat16; "
            "use --precision auto or float32"
        )
    if precision == "int8" and runtime != "openvino":
        raise ConfigError(
            "model.precision=int8 runs on OpenVINO only: use --runtime openvino (or auto), "
            "or --precision float32/bfloat16 with TensorFlow"
        )
    reason = "; ".join(why) or "as configured"
    return Placement(runtime, precision, reason, hosts)
