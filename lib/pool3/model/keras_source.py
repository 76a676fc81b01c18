"""Keras ``InceptionV3(include_top=False, pooling="avg")`` weights as a model source.

Accepts the weights files Keras keeps in ``~/.keras/models`` (``.h5``, e.g.
``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``), ``.weights.h5`` files, and whole
``.keras`` models; ``.keras`` files are loaded with ``safe_mode=True`` (no lambda
deserialisation), ``.h5`` weights into a freshly built architecture (no code in the file is
run). Keras' own preprocessing is kept (``x / 127.5 - 1``); the resize is the same TF1 bilinear
as for the other sources.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from pool3.errors import ModelError
from pool3.model.inception2015 import FEATURE_DIM, IMAGE_SIZE


def _build_architecture() -> Any:
    import keras

    return keras.applications.InceptionV3(
        include_top=False,
        weights=None,
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        pooling="avg",
    )


def load_keras_model(data: bytes, suffix: str) -> Any:
    """Build the Keras model from file bytes; ModelError if it is not InceptionV3 (no top)."""
    import keras

    # Keras picks the reader by file name: "*.weights.h5" is Keras 3's layout, plain "*.h5" the
    # legacy one of the files in ~/.keras/models.
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if suffix == ".keras":
            model = keras.models.load_model(path, compile=False, safe_mode=True)
        else:
            model = _build_architecture()
            model.load_weights(path)
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise ModelError(
            f"the Keras file is not InceptionV3(include_top=False, pooling='avg') weights: "
            f"{err}. Use the *_notop.h5 file from ~/.keras/models, or model.source=default"
        ) from err
    finally:
        os.unlink(path)
    shape = tuple(model.output_shape)
    if shape != (None, FEATURE_DIM) or tuple(model.input_shape)[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ModelError(
            f"the Keras model maps {model.input_shape} to {shape}: expected InceptionV3 "
            f"(None, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) -> (None, {FEATURE_DIM}) with pooling='avg'"
        )
    return model


def keras_forward(data: bytes, suffix: str) -> Callable[[Any], Any]:
    """Forward function: (N, 299, 299, 3) float32 in 0..255 -> (N, 2048) float32."""
    model = load_keras_model(data, suffix)

    def forward(images: Any) -> Any:
        return model(images / 127.5 - 1.0, training=False)

    return forward
