"""Driver side of the OpenVINO runtime: any model source to OpenVINO IR, once, cached.

:func:`to_openvino` converts the network of a bundle (the shipped 2015 weights, a ``.pb``
GraphDef, a Keras file) with ``openvino.convert_model`` from the same TensorFlow function the
TensorFlow runtime runs, so both runtimes compute the same graph; TensorFlow is imported on
the driver for this only, and only on a cache miss. :func:`quantize_int8` makes an int8 IR
with NNCF post-training quantization on calibration images.

Cache: ``<POOL3_HOME>/openvino/<name>.{xml,bin,json}``, keyed by the source fingerprint, the
variant (``float``, or ``int8-<calibration id>`` with the quantization settings) and the
OpenVINO, TensorFlow (and NNCF) versions; a change to pool3's own graph code bumps
``IR_CACHE_FORMAT``. Files are written atomically and the JSON holds the SHA-256 of
both; an entry that does not match is rebuilt with a warning, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pool3.errors import ModelError
from pool3.model.cache import atomic_write, pool3_home
from pool3.model.openvino_runtime import import_openvino, openvino_version
from pool3.model.runtime import tensorflow_version
from pool3.model.sources import ModelBundle

log = logging.getLogger(__name__)

IR_KIND = "openvino-ir"
IR_CACHE_FORMAT = 1
#: NNCF settings of ``precision = "int8"`` (bench/RESULTS.md compares the alternatives tried):
#: ``preset`` (``performance``: symmetric activations, ``mixed``: asymmetric),
#: ``fast_bias_correction``, and ``keep_float``: layers left in float (``first_conv``, the
#: stem's first convolution on raw pixels; ``last_block``, the 9 convolutions of ``mixed_10``,
#: whose output is the feature).
#: Measured on Fashion-MNIST, 2,000 images, 400 held out (bench/RESULTS.md 2026-12-01): all
#: layers int8 -0.75 points and 7.8 % of test predictions changed against float32; the first
#: convolution kept float +0.25 points, 4.0 % changed, at 0.95x the speed; the mixed preset
#: and full bias correction were worse.
INT8_SETTINGS: dict[str, Any] = {
    "preset": "performance",
    "fast_bias_correction": True,
    "keep_float": ["first_conv"],
}
#: Convolutions of the last Inception block (``mixed_10``), the last ones in graph order.
LAST_BLOCK_CONVS = 9


def _kept_float(model: Any, keep: list[str]) -> list[str]:
    """Names of the convolutions ``keep`` names (see :data:`INT8_SETTINGS`), in graph order."""
    convs = [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    ]
    names: list[str] = []
    if "first_conv" in keep:
        names += convs[:1]
    if "last_block" in keep:
        names += convs[-LAST_BLOCK_CONVS:]
    unknown = set(keep) - {"first_conv", "last_block"}
    if unknown:
        raise ValueError(f"unknown keep_float entries {sorted(unknown)}")
    return names


def _entry_name(fingerprint: str, variant: str, versions: str) -> str:
    key = hashlib.sha256(f"{fingerprint}|{variant}|{versions}".encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", fingerprint)
    return f"{safe}-{variant.split('-')[0]}-{key}"


def _read_entry(base: Path, expect: dict[str, Any]) -> tuple[bytes, bytes, dict[str, Any]] | None:
    meta_path = base.with_suffix(".json")
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        xml = base.with_suffix(".xml").read_bytes()
        weights = base.with_suffix(".bin").read_bytes()
    except (OSError, ValueError) as err:
        log.warning("rebuilding OpenVINO IR cache entry %s: unreadable (%s)", base, err)
        return None
    ok = (
        all(meta.get(k) == v for k, v in expect.items())
        and hashlib.sha256(xml).hexdigest() == meta.get("xml_sha256")
        and hashlib.sha256(weights).hexdigest() == meta.get("bin_sha256")
    )
    if not ok:
        log.warning("rebuilding OpenVINO IR cache entry %s: it does not match its manifest", base)
        return None
    return xml, weights, meta


def _write_entry(base: Path, xml: bytes, weights: bytes, meta: dict[str, Any]) -> None:
    meta = {**meta, "xml_sha256": hashlib.sha256(xml).hexdigest()}
    meta["bin_sha256"] = hashlib.sha256(weights).hexdigest()
    try:  # the .json goes last: an entry without it is never read
        atomic_write(base.with_suffix(".xml"), xml)
        atomic_write(base.with_suffix(".bin"), weights)
        atomic_write(base.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    except OSError as err:
        log.warning("cannot write OpenVINO IR cache %s (%s); continuing without it", base, err)


def _serialize(model: Any) -> tuple[bytes, bytes]:
    ov = import_openvino()
    with tempfile.TemporaryDirectory(prefix="pool3-ir-") as tmp:
        xml_path = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml_path), compress_to_fp16=False)
        return xml_path.read_bytes(), xml_path.with_suffix(".bin").read_bytes()


def _ir_bundle(
    source: ModelBundle, xml: bytes, weights: bytes, meta: dict[str, Any]
) -> ModelBundle:
    return replace(
        source,
        kind=IR_KIND,
        payload=weights,
        description=f"{source.description}, as OpenVINO IR ({meta['variant']})",
        extra={
            "xml": xml,
            "variant": meta["variant"],
            "openvino": meta["openvino"],
            "source_kind": meta["source_kind"],
            **({"calibration": meta["calibration"]} if "calibration" in meta else {}),
        },
    )


def _convert(bundle: ModelBundle) -> Any:
    from pool3.model.featurizer import tensorflow_forward

    ov = import_openvino()
    try:
        forward = tensorflow_forward(bundle)
    except ImportError as err:
        raise ModelError(
            f"converting {bundle.description} to OpenVINO IR needs TensorFlow on the driver "
            f"({err}): install pool3[cpu] where the driver runs (the workers do not need it)"
        ) from err
    try:
        return ov.convert_model(forward, input=[(-1, 299, 299, 3)])
    except Exception as err:
        raise ModelError(
            f"OpenVINO cannot convert the model {bundle.description} ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}): run it with "
            "model.runtime = 'tensorflow' (--runtime tensorflow)"
        ) from err


def to_openvino(bundle: ModelBundle, *, home: str | os.PathLike[str] | None = None) -> ModelBundle:
    """The float IR of ``bundle`` (from the cache, or converted and cached: ~2-10 s)."""
    if bundle.kind == IR_KIND:
        return bundle
    # the converter's output depends on the TensorFlow that traced the function, too
    version = f"{openvino_version()}|tf-{tensorflow_version() or 'none'}"
    expect = {
        "ir_cache_format": IR_CACHE_FORMAT,
        "fingerprint": bundle.fingerprint,
        "variant": "float",
        "openvino": version,
    }
    base = pool3_home(home) / "openvino" / _entry_name(bundle.fingerprint, "float", version)
    hit = _read_entry(base, expect)
    if hit is not None:
        return _ir_bundle(bundle, *hit)
    start = time.perf_counter()
    xml, weights = _serialize(_convert(bundle))
    meta = {**expect, "source_kind": bundle.kind, "description": bundle.description}
    seconds = time.perf_counter() - start
    log.info("converted %s to OpenVINO IR in %.1f s", bundle.fingerprint, seconds)
    _write_entry(base, xml, weights, meta)
    return _ir_bundle(bundle, xml, weights, meta)


def calibration_id(sha256s: list[str], settings: dict[str, Any] = INT8_SETTINGS) -> str:
    """12 hex of the sorted contents' SHA-256 and the quantization settings."""
    spec = json.dumps({"images": sorted(sha256s), "settings": settings}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def quantize_int8(
    float_ir: ModelBundle,
    samples: np.ndarray,
    *,
    sample_sha256: list[str],
    home: str | os.PathLike[str] | None = None,
    settings: dict[str, Any] = INT8_SETTINGS,
) -> ModelBundle:
    """An int8 IR of ``float_ir`` quantized by NNCF on ``samples`` (N, 299, 299, 3) float32.

    Cached by (fingerprint, calibration id = contents + settings, OpenVINO and NNCF
    versions), so a rerun on the same input does not calibrate again.
    """
    import nncf  # imports openvino_telemetry if it can: import_openvino() blocked it above

    ident = calibration_id(sample_sha256, settings)
    variant = f"int8-{ident}"
    # the float IR's own versions (OpenVINO, TensorFlow), so a rebuilt float IR is never
    # paired with an int8 entry quantized from an older one
    versions = f"{float_ir.extra['openvino']}|nncf-{nncf.__version__}"
    expect = {
        "ir_cache_format": IR_CACHE_FORMAT,
        "fingerprint": float_ir.fingerprint,
        "variant": variant,
        "openvino": versions,
    }
    base = pool3_home(home) / "openvino" / _entry_name(float_ir.fingerprint, variant, versions)
    hit = _read_entry(base, expect)
    if hit is not None:
        log.info("int8 IR %s from the cache", variant)
        return _ir_bundle(float_ir, *hit)
    if len(samples) == 0:
        raise ModelError("int8 calibration needs at least one decodable image; none was given")
    ov = import_openvino()
    model = ov.Core().read_model(model=float_ir.extra["xml"], weights=float_ir.payload)
    start = time.perf_counter()
    ignored = _kept_float(model, list(settings.get("keep_float", [])))
    quantized = nncf.quantize(
        model,
        nncf.Dataset([samples[i : i + 1] for i in range(len(samples))]),
        preset=nncf.QuantizationPreset(settings["preset"]),
        subset_size=len(samples),
        fast_bias_correction=settings["fast_bias_correction"],
        ignored_scope=nncf.IgnoredScope(names=ignored) if ignored else None,
    )
    log.info(
        "quantized %s to int8 on %d images in %.1f s",
        float_ir.fingerprint,
        len(samples),
        time.perf_counter() - start,
    )
    xml, weights = _serialize(quantized)
    meta = {
        **expect,
        "source_kind": float_ir.extra.get("source_kind", float_ir.kind),
        "calibration": {"images": len(samples), "id": ident, "settings": settings},
    }
    _write_entry(base, xml, weights, meta)
    return _ir_bundle(float_ir, xml, weights, meta)
