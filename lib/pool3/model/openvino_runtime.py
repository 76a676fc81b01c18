"""OpenVINO in the workers: an IR bundle in, a compiled CPU model out, no TensorFlow.

A worker of this runtime imports ``openvino`` (~0.5 s, ~250 MB RSS with the model) and
never ``tensorflow``; :func:`import_openvino` is the one place that imports it, so that
OpenVINO's telemetry is off in every process of pool3 (see its docstring).

Compile settings, all explicit (bench/RESULTS.md has the measurements behind them):

- ``INFERENCE_PRECISION_HINT`` is always set: OpenVINO's CPU plugin otherwise runs
  bfloat16 by itself on AMX CPUs, and a run must never change precision silently.
- ``INFERENCE_NUM_THREADS`` = the cores the Spark task owns (``spark.task.cpus`` or
  ``model.threads``), one stream, and no CPU pinning: OpenVINO's default is every core of
  the node and pinned threads, and with one Python worker per task slot several workers
  would then pin themselves to the same cores.
- ``PERFORMANCE_HINT = LATENCY``: with one stream it only sets scheduling defaults; the
  throughput hint was within 8 % on 2 cores and would ask for more streams than the task has.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: ``model.precision`` -> OpenVINO's ``INFERENCE_PRECISION_HINT`` (int8 IRs carry their own
#: quantized layers; their remaining float layers run in float32).
PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}


def block_telemetry() -> None:
    """Make ``import openvino_telemetry`` fail in this process, so nothing is ever sent.

    The OpenVINO model converter and NNCF report usage through the ``openvino_telemetry``
    package (NNCF without asking, unless a consent file says no or a CI variable is set).
    Both import it inside ``try: ... except ImportError`` and then use a stub, so a ``None``
    entry in ``sys.modules`` turns every such report into a no-op before any is attempted,
    whatever the consent file says. tests/model/test_openvino.py checks with an audit hook
    that converting and quantizing opens no socket.
    """
    if sys.modules.get("openvino_telemetry", None) is not None:
        log.warning(
            "openvino_telemetry was imported before pool3 could block it; set "
            "OPENVINO_TELEMETRY consent to 0 with 'opt_in_out --opt_out' to be sure"
        )
        return
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]


def import_openvino() -> Any:
    """``import openvino`` with telemetry blocked (see :func:`block_telemetry`)."""
    block_telemetry()
    import openvino

    return openvino


def openvino_version() -> str:
    """The installed OpenVINO version (e.g. ``2026.4.1-22982-...``)."""
    return str(import_openvino().get_version())


def compile_ir(
    xml: bytes, weights: bytes, *, precision: str, threads: int, device: str = "CPU"
) -> Any:
    """Compile an IR (``.xml`` + ``.bin`` bytes) for ``device`` with pool3's explicit settings."""
    ov = import_openvino()
    import openvino.properties as props
    import openvino.properties.hint as hints

    core = ov.Core()
    model = core.read_model(model=xml, weights=weights)
    config: dict[str, Any] = {
        hints.inference_precision: PRECISION_HINTS[precision],
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        props.num_streams: 1,
        hints.enable_cpu_pinning: False,
    }
    if threads > 0:
        config[props.inference_num_threads] = threads
    compiled = core.compile_model(model, device, config)
    actual = str(compiled.get_property(hints.inference_precision))
    if precision == "bfloat16" and "bf16" not in actual and "bfloat16" not in actual:
        # a host the driver's probe did not reach (late executor): never record a lie
        import socket

        from pool3.errors import ConfigError

        raise ConfigError(
            f"model.precision=bfloat16, but OpenVINO on {socket.gethostname()} compiled for "
            f"{actual} (no native bfloat16 on this CPU): use --precision auto or float32"
        )
    log.info(
        "OpenVINO %s: %s, inference precision %s, %s threads",
        device,
        precision,
        actual,
        threads or "all",
    )
    return compiled


def openvino_forward(
    xml: bytes, weights: bytes, *, precision: str, threads: int
) -> Callable[[np.ndarray], np.ndarray]:
    """``forward(images (N, 299, 299, 3) float32 0..255) -> (N, 2048) float32``."""
    compiled = compile_ir(xml, weights, precision=precision, threads=threads)
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def forward(images: np.ndarray) -> np.ndarray:
        result = request.infer({0: images}, share_inputs=True)
        return np.array(result[output], dtype=np.float32, copy=True)

    return forward
