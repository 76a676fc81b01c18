"""Worker side: build a :class:`Featurizer` from a :class:`ModelBundle`, once per process.

Shape of the API follows ``pyspark.ml.functions.predict_batch_udf``: a zero-argument-style
factory (:func:`cached_featurizer`) that loads the model once per Python worker and returns an
object whose ``featurize_batch(np.ndarray) -> np.ndarray`` runs batches.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pool3.config import ModelConfig, choices_of
from pool3.errors import ConfigError
from pool3.log import import_tensorflow
from pool3.model.inception2015 import FEATURE_DIM, IMAGE_SIZE
from pool3.model.sources import ModelBundle

log = logging.getLogger(__name__)

PRECISIONS = choices_of(ModelConfig, "precision")
_CACHE: dict[tuple[str, str, int], Featurizer] = {}
_LOCK = threading.Lock()


def resize_299(image: np.ndarray) -> np.ndarray:
    """Resize an RGB image as the classic graph does, before ``(x - 128) / 128``.

    Parameters
    ----------
    image : array of shape (H, W, 3), uint8 (or float32 in 0..255)

    Returns
    -------
    array of shape (299, 299, 3), float32 in 0..255: TF1 ``resize_bilinear`` with
    ``align_corners=False, half_pixel_centers=False``.
    """
    from pool3.images.resize import resize_bilinear_tf1

    return resize_bilinear_tf1(image, IMAGE_SIZE)


class Featurizer:
    """A loaded model: images in, float32 ``(N, 2048)`` pool_3 features out.

    Parameters
    ----------
    fingerprint : id of weights + preprocessing (see ``ModelBundle.fingerprint``).
    forward : callable taking a float32 tensor (N, 299, 299, 3) in 0..255 and returning
        (N, 2048) features; normally a ``tf.function`` with an input signature.
    precision : ``"float32"``, ``"bfloat16"`` or ``"int8"`` (OpenVINO only).
    device : ``"CPU"`` or ``"GPU"``.
    runtime : ``"openvino"`` or ``"tensorflow"``.
    """

    def __init__(
        self,
        *,
        fingerprint: str,
        forward: Callable[[Any], Any],
        precision: str = "float32",
        device: str = "CPU",
        runtime: str = "tensorflow",
    ) -> None:
        self.fingerprint = fingerprint
        self.precision = precision
        self.device = device
        self.runtime = runtime
        self._forward = forward

    def featurize_batch(self, batch: np.ndarray) -> np.ndarray:
        """Features of already-resized images.

        Parameters
        ----------
        batch : array of shape (N, 299, 299, 3), float32 in 0..255

        Returns
        -------
        array of shape (N, 2048), float32
        """
        if batch.ndim != 4 or batch.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise ValueError(
                f"expected a batch of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), "
                f"got {batch.shape}: resize images with resize_299 first"
            )
        if len(batch) == 0:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        out = self._forward(np.ascontiguousarray(batch, dtype=np.float32))
        out = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
        return np.ascontiguousarray(out.reshape(len(batch), FEATURE_DIM), dtype=np.float32)

    def featurize(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Features of RGB images of any size: list of (H, W, 3) uint8 -> (N, 2048) float32."""
        if len(images) == 0:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        return self.featurize_batch(np.stack([resize_299(img) for img in images]))


def import_tensorflow_in_worker() -> None:
    """Import TensorFlow in a Spark Python worker without its eager Keras import.

    ``import tensorflow`` (2.16+) also imports Keras 3 eagerly, which is about half of its
    ~5 s import and is never used by the featurizer (the Keras model source imports ``keras``
    itself, which still works). TensorFlow skips that import when ``TF_USE_LEGACY_KERAS`` is
    set and ``tf_keras`` is not installed; the variable is set only around the import and
    only here, in worker processes (``tf.keras`` then is unavailable in that process, which
    runs pool3's code only). Does nothing if TensorFlow is already imported or the user set
    the variable, or where ``tf_keras`` is installed (TensorFlow would import it instead).
    """
    if "tensorflow" in sys.modules or "TF_USE_LEGACY_KERAS" in os.environ:
        return
    if importlib.util.find_spec("tf_keras") is not None:  # it would import that instead
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        import_tensorflow()
    finally:
        del os.environ["TF_USE_LEGACY_KERAS"]


def _configure_tensorflow(threads: int, precision: str) -> str:
    """Threads, precision and GPU memory growth; returns ``"GPU"`` or ``"CPU"``."""
    tf = import_tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:  # share the card with the other tasks' workers instead of grabbing it all
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            log.debug("GPU memory growth already fixed in this process")
    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        except RuntimeError:  # runtime already initialised in this process: keep its settings
            log.debug("TensorFlow threads already fixed in this process")
    if precision == "bfloat16":
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    return "GPU" if gpus else "CPU"


def cpu_supports_bfloat16() -> bool:
    """True where this CPU has AVX-512-BF16 or AMX-BF16 (Linux /proc/cpuinfo flags)."""
    from pool3.model.runtime import NATIVE_BF16, cpu_flags

    return any(f in cpu_flags() for f in NATIVE_BF16)


def resolve_precision(precision: str) -> str:
    """``auto`` becomes ``bfloat16`` where the CPU supports it, else ``float32``."""
    if precision not in PRECISIONS:
        raise ConfigError(
            f"model.precision={precision!r} is not valid: expected one of {PRECISIONS}"
        )
    if precision == "auto":  # this process's CPU; a Spark run resolves it from the executors
        return "bfloat16" if cpu_supports_bfloat16() else "float32"
    return precision


def tensorflow_forward(bundle: ModelBundle) -> Callable[[Any], Any]:
    """The TensorFlow function of a bundle: (N, 299, 299, 3) float32 0..255 -> (N, 2048).

    The TensorFlow runtime runs it; :mod:`pool3.model.openvino_ir` converts the same
    function, so both runtimes compute one graph.
    """
    tf = import_tensorflow()

    signature = [tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name="images")]
    if bundle.kind == "pool3-npz":
        from pool3.model.cache import load_npz_bytes
        from pool3.model.inception2015 import build_forward

        return tf.function(build_forward(load_npz_bytes(bundle.payload)), signature)
    if bundle.kind == "graphdef":
        from pool3.model.graphdef import graphdef_forward

        return graphdef_forward(bundle.payload)
    if bundle.kind == "keras":
        from pool3.model.keras_source import keras_forward

        return tf.function(keras_forward(bundle.payload, bundle.extra["suffix"]), signature)
    raise ValueError(f"unknown model bundle kind {bundle.kind!r}")


def featurizer_from_bundle(
    bundle: ModelBundle, *, threads: int = 0, precision: str = "float32"
) -> Featurizer:
    """Build the model of a bundle in this process.

    An OpenVINO IR bundle (``kind == "openvino-ir"``, from :func:`pool3.model.openvino_ir.
    to_openvino`) is compiled by OpenVINO without importing TensorFlow (~0.5 s); any other
    bundle runs on TensorFlow (seconds: imports it and traces a graph). ``precision`` must
    be resolved already (:func:`pool3.model.runtime.resolve`), or ``"auto"`` for this
    process's own CPU.
    """
    precision = resolve_precision(precision)
    if bundle.kind == "openvino-ir":
        from pool3.model.openvino_runtime import openvino_forward

        if precision == "int8" and not bundle.extra["variant"].startswith("int8"):
            raise ConfigError(
                "model.precision=int8 needs a quantized IR (pool3.model.openvino_ir."
                "quantize_int8); this bundle is the float IR"
            )
        forward = openvino_forward(
            bundle.extra["xml"], bundle.payload, precision=precision, threads=threads
        )
        log.info("featurizer %s on OpenVINO CPU (%s)", bundle.fingerprint, precision)
        return Featurizer(
            fingerprint=bundle.fingerprint,
            forward=forward,
            precision=precision,
            device="CPU",
            runtime="openvino",
        )
    if precision == "int8":
        raise ConfigError(
            "model.precision=int8 runs on OpenVINO only: set model.runtime to 'openvino' or "
            "'auto' (--runtime openvino), or choose float32/bfloat16 for TensorFlow"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    device = _configure_tensorflow(threads, precision)
    if precision == "bfloat16" and device == "CPU" and not cpu_supports_bfloat16():
        log.warning(
            "model.precision=bfloat16 on a CPU without AVX-512-BF16 or AMX: TensorFlow's "
            "oneDNN bfloat16 rewrite does not apply here and the model runs in float32 "
            "(measured on an AVX2-only EPYC: 1.0x, features identical); use precision "
            "'auto' to say so"
        )
    forward = tensorflow_forward(bundle)
    log.info("featurizer %s on TensorFlow %s (%s)", bundle.fingerprint, device, precision)
    return Featurizer(
        fingerprint=bundle.fingerprint,
        forward=forward,
        precision=precision,
        device=device,
        runtime="tensorflow",
    )


def cached_featurizer(
    get_bundle: Callable[[], ModelBundle],
    *,
    fingerprint: str,
    threads: int = 0,
    precision: str = "float32",
) -> Featurizer:
    """The featurizer for ``fingerprint``, built at most once per Python process.

    ``get_bundle`` is only called on a miss, so the shipped model file (tens of MB) is
    not even read again by later tasks of a reused worker.
    """
    key = (fingerprint, precision, threads)
    with _LOCK:
        if key not in _CACHE:
            log.info("building featurizer %s (%s) in pid %d", fingerprint, precision, os.getpid())
            _CACHE[key] = featurizer_from_bundle(get_bundle(), threads=threads, precision=precision)
        return _CACHE[key]
