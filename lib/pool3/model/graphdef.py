"""Frozen GraphDefs with the tutorial's tensor names: export, check, and batched loading.

The classic ``classify_image_graph_def.pb`` takes one JPEG as a string on
``DecodeJpeg/contents:0`` and yields ``pool_3:0`` of shape (1, 1, 1, 2048); between them it
decodes, casts, adds a batch axis of 1 and runs ``ResizeBilinear`` (TF1 semantics) and
``(x - 128) / 128``. :func:`export_graphdef` writes our converted weights as such a graph, so
the tutorial's own code runs against the real weights.

Batching a graph that was built for one image: we import it with ``input_map`` replacing the
output of its ``ResizeBilinear`` node by a ``(None, 299, 299, 3)`` float32 placeholder. The
decode and resize move out of the graph into the worker (same TF1 resize, see
``featurizer.resize_299``); everything from ``(x - 128) / 128`` to ``pool_3`` then runs on a
whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pool3.errors import ModelError
from pool3.log import import_tensorflow
from pool3.model.inception2015 import FEATURE_DIM, IMAGE_SIZE, build_forward

INPUT_NAME = "DecodeJpeg/contents"
RESIZE_NAME = "ResizeBilinear"
OUTPUT_NAME = "pool_3"


def _parse(data: bytes, source: str) -> Any:
    tf = import_tensorflow()

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except Exception as err:  # protobuf raises its own DecodeError type
        raise ModelError(f"{source} is not a TensorFlow GraphDef (.pb): {err}") from err
    return graph_def


def check_graphdef(data: bytes, *, source: str = "graph") -> None:
    """Raise ModelError unless the graph has ``pool_3`` and the classic ``ResizeBilinear``."""
    names = {node.name for node in _parse(data, source).node}
    if not names:
        raise ModelError(f"{source} is not a TensorFlow GraphDef (.pb): it has no nodes")
    if OUTPUT_NAME not in names:
        raise ModelError(
            f"{source} has no tensor {OUTPUT_NAME}:0: expected an Inception-v3 graph such as "
            "classify_image_graph_def.pb; point model.source at that file, or use 'default'"
        )
    if RESIZE_NAME not in names:
        raise ModelError(
            f"{source} has no {RESIZE_NAME} node: pool3 batches a graph by feeding resized "
            "images there, as in classify_image_graph_def.pb"
        )


def export_graphdef(
    weights: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    dct_method: str = "INTEGER_ACCURATE",
) -> Path:
    """Write folded weights as a frozen GraphDef with the tutorial's tensor names.

    ``DecodeJpeg/contents:0`` (a JPEG string) in, ``pool_3:0`` (1, 1, 1, 2048) out; JPEG decode
    and TF1 bilinear resize inside the graph, as in ``classify_image_graph_def.pb``.

    ``dct_method``: ``"INTEGER_ACCURATE"`` (default) decodes exactly as libjpeg's ISLOW, which
    is what Pillow (pool3's decoder) does, so the graph and pool3 agree to float rounding.
    ``""`` is TensorFlow's default (``INTEGER_FAST``), as the classic graph's node had: pixels
    then differ by up to ~16 levels (mean ~1.3) and features by cosine ~0.997 (measured on
    scikit-learn's sample photos saved at quality 95).
    """
    tf = import_tensorflow()

    graph = tf.Graph()
    tmp_input = "pool3_export_contents"
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, shape=[], name=tmp_input)
        image = tf.io.decode_jpeg(contents, channels=3, dct_method=dct_method, name="DecodeJpeg")
        x = tf.expand_dims(tf.cast(image, tf.float32, name="Cast"), 0, name="ExpandDims")
        x = tf.raw_ops.ResizeBilinear(
            images=x,
            size=[IMAGE_SIZE, IMAGE_SIZE],
            align_corners=False,
            half_pixel_centers=False,
            name=RESIZE_NAME,
        )
        features = build_forward(weights)(x)
        tf.reshape(features, [-1, 1, 1, FEATURE_DIM], name=OUTPUT_NAME)
    graph_def = graph.as_graph_def()
    # A name scope and an op cannot both be called DecodeJpeg while building, so the input
    # gets its classic name afterwards.
    for node in graph_def.node:
        if node.name == tmp_input:
            node.name = INPUT_NAME
        node.input[:] = [INPUT_NAME if i == tmp_input else i for i in node.input]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(graph_def.SerializeToString())
    tmp.replace(path)
    return path


def graphdef_concrete(data: bytes) -> Any:
    """The GraphDef as a TF ``ConcreteFunction`` from its resize output to ``pool_3``.

    Batched: (N, 299, 299, 3) float32 -> (N, 2048). OpenVINO converts this object.
    """
    tf = import_tensorflow()

    graph_def = _parse(data, "graph")

    def imported(images: Any) -> Any:
        (out,) = tf.compat.v1.import_graph_def(
            graph_def,
            input_map={f"{RESIZE_NAME}:0": images},
            return_elements=[f"{OUTPUT_NAME}:0"],
            name="g",
        )
        return out

    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)
    wrapped = tf.compat.v1.wrap_function(imported, [spec])
    return wrapped.prune(wrapped.inputs[0], wrapped.outputs[0])


def graphdef_forward(data: bytes) -> Callable[[Any], Any]:
    """A batched ``tf.function`` of a GraphDef: (N, 299, 299, 3) float32 -> pool_3.

    A ``tf.function`` with an input signature (not the pruned function itself), so that
    OpenVINO's converter takes it like the other sources' functions.
    """
    tf = import_tensorflow()

    pruned = graphdef_concrete(data)
    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name="images")
    return tf.function(lambda images: pruned(images), input_signature=[spec])


class TutorialSession:
    """The tutorial's method, verbatim: one ``sess.run`` per JPEG on ``DecodeJpeg/contents:0``.

    Used as the baseline in benchmarks and to check exported graphs.
    """

    def __init__(self, pb_path: str | Path) -> None:
        tf = import_tensorflow()

        self._graph = tf.Graph()
        with self._graph.as_default():
            graph_def = _parse(Path(pb_path).read_bytes(), str(pb_path))
            tf.compat.v1.import_graph_def(graph_def, name="")
        self._sess = tf.compat.v1.Session(graph=self._graph)
        self._out = self._graph.get_tensor_by_name(f"{OUTPUT_NAME}:0")

    def features(self, jpeg_bytes: bytes) -> np.ndarray:
        """(2048,) float32 features of one JPEG, as ``np.squeeze(sess.run(...))``."""
        out = self._sess.run(self._out, {f"{INPUT_NAME}:0": jpeg_bytes})
        return np.squeeze(out).astype(np.float32)

    def close(self) -> None:
        self._sess.close()
