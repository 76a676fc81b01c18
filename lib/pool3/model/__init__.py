"""Inception-v3 pool_3 featurizers: one interface over the model sources.

Driver: ``bundle = load_bundle(source)`` (bytes to ship). Worker:
``cached_featurizer(lambda: read_artifact(name), fingerprint=...)``. Both at once, in one process:
``load_featurizer(source)``.

Owns the model sources (shipped 2015 weights, ``.pb``, Keras files), their cache, the
network and its preprocessing (the TF1 bilinear resize), the fingerprint, and the two
runtimes behind one :class:`Featurizer`: TensorFlow (GPUs, or on request) and OpenVINO
(CPU workers; :mod:`.openvino_ir` converts and quantizes on the driver,
:mod:`.openvino_runtime` compiles in the workers), chosen by :mod:`.runtime` from what the
executors report.

May import: :mod:`pool3.errors`, :mod:`pool3.config`, :mod:`pool3.images` (the numpy
TF1 resize), TensorFlow, OpenVINO and NNCF (lazily: an OpenVINO worker never imports
TensorFlow). Never imports extraction, training, scoring, report or commands.
"""

from __future__ import annotations

import os

from pool3.model.featurizer import Featurizer, cached_featurizer, featurizer_from_bundle
from pool3.model.inception2015 import FEATURE_DIM, IMAGE_SIZE
from pool3.model.sources import ModelBundle, load_bundle

__all__ = [
    "FEATURE_DIM",
    "IMAGE_SIZE",
    "Featurizer",
    "ModelBundle",
    "cached_featurizer",
    "featurizer_from_bundle",
    "load_bundle",
    "load_featurizer",
]


def load_featurizer(
    source: str | os.PathLike[str] = "default",
    *,
    home: str | os.PathLike[str] | None = None,
    threads: int = 0,
    precision: str = "float32",
) -> Featurizer:
    """Load a model source and build its featurizer in this process."""
    return featurizer_from_bundle(
        load_bundle(source, home=home), threads=threads, precision=precision
    )
