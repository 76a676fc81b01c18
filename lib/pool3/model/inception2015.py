"""The 2015-12-05 Inception-v3 graph (``classify_image_graph_def.pb``) up to ``pool_3``, in TF2.

Written for that graph, not Keras' ``InceptionV3``: convolutions carry no bias and are followed
by batch norm without scale (eps 1e-3, folded here into kernel and bias), the asymmetric
1x7/7x1 convolutions pad explicitly as the graph does, the average pools of the towers exclude
padding from the count, and ``mixed_10`` max-pools in its pool branch where every other block
averages (the known quirk of that graph). Layer names follow the graph (``conv`` ... ``mixed_10``,
``tower``, ``tower_1`` ...), as in the TorchScript port it is converted from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pool3.log import import_tensorflow

BN_EPSILON = 1e-3
FEATURE_DIM = 2048
IMAGE_SIZE = 299

_A = ("conv", "tower.conv", "tower.conv_1", "tower_1.conv", "tower_1.conv_1", "tower_1.conv_2")
_C = (
    "conv",
    *(f"tower.conv{s}" for s in ("", "_1", "_2")),
    *(f"tower_1.conv{s}" for s in ("", "_1", "_2", "_3", "_4")),
)
_E = (
    "conv",
    "tower_conv",
    "tower_mixed_conv",
    "tower_mixed_conv_1",
    "tower_1_conv",
    "tower_1_conv_1",
    "tower_1_mixed_conv",
    "tower_1_mixed_conv_1",
    "tower_2_conv",
)
BLOCKS: tuple[tuple[str, str], ...] = (
    ("mixed", "A"),
    ("mixed_1", "A"),
    ("mixed_2", "A"),
    ("mixed_3", "B"),
    ("mixed_4", "C"),
    ("mixed_5", "C"),
    ("mixed_6", "C"),
    ("mixed_7", "C"),
    ("mixed_8", "D"),
    ("mixed_9", "E"),
    ("mixed_10", "E_max"),
)
_BLOCK_CONVS: dict[str, tuple[str, ...]] = {
    "A": (*_A, "tower_2.conv"),
    "B": ("conv", "tower.conv", "tower.conv_1", "tower.conv_2"),
    "C": (*_C, "tower_2.conv"),
    "D": ("tower.conv", "tower.conv_1", *(f"tower_1.conv{s}" for s in ("", "_1", "_2", "_3"))),
    "E": _E,
    "E_max": _E,
}
STEM_CONVS = ("conv", "conv_1", "conv_2", "conv_3", "conv_4")


def conv_names() -> list[str]:
    """All 94 convolution layer names, in graph order (e.g. ``"mixed_4.tower.conv_1"``)."""
    names = list(STEM_CONVS)
    for block, kind in BLOCKS:
        names.extend(f"{block}.{c}" for c in _BLOCK_CONVS[kind])
    return names


def fold_batch_norm(
    weight: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fold inference batch norm into a bias-free convolution.

    Parameters
    ----------
    weight : array of shape (out, in, kh, kw), float32 (PyTorch OIHW layout)
    beta, mean, var : arrays of shape (out,), float32

    Returns
    -------
    kernel : array of shape (kh, kw, in, out), float32 (TF HWIO layout)
    bias : array of shape (out,), float32
    """
    scale = 1.0 / np.sqrt(var.astype(np.float64) + BN_EPSILON)
    kernel = weight.astype(np.float64) * scale[:, None, None, None]
    bias = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return (
        np.ascontiguousarray(kernel.transpose(2, 3, 1, 0), dtype=np.float32),
        bias.astype(np.float32),
    )


def convert_torchscript_tensors(tensors: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Turn the TorchScript port's tensors into folded TF weights.

    Returns a dict with ``<layer>/kernel`` (HWIO float32), ``<layer>/bias`` and
    ``<layer>/geometry`` (int32 ``[stride, pad_h, pad_w]``) for every layer of
    :func:`conv_names`. Raises ``KeyError`` naming a missing layer.
    """
    out: dict[str, np.ndarray] = {}
    for name in conv_names():
        p = f"net.layers.{name}"
        kernel, bias = fold_batch_norm(
            tensors[f"{p}.weight"], tensors[f"{p}.beta"], tensors[f"{p}.mean"], tensors[f"{p}.var"]
        )
        pad = tensors[f"{p}.padding"]
        pad_hw = [int(pad), int(pad)] if isinstance(pad, int) else [int(v) for v in pad]
        out[f"{name}/kernel"] = kernel
        out[f"{name}/bias"] = bias
        out[f"{name}/geometry"] = np.array([int(tensors[f"{p}.stride"]), *pad_hw], dtype=np.int32)
    return out


def build_forward(weights: Mapping[str, np.ndarray], *, dtype: Any = None) -> Callable[..., Any]:
    """Return ``forward(images) -> features`` as plain TF ops (wrap it in ``tf.function``).

    ``images`` is a float32 tensor of shape (N, 299, 299, 3), RGB in 0..255, already resized;
    the graph's ``(x - 128) / 128`` happens inside. The result is (N, 2048) float32.
    Weights become constants of the traced graph, so the traced function is self-contained.
    Length (over ~60 lines): the network's layers in the order of the 2015 graph, read
    against it block by block; split, the order would be spread over functions.
    """
    tf = import_tensorflow()

    compute = dtype or tf.float32
    consts = {
        name: tf.constant(value, dtype=compute if value.dtype == np.float32 else tf.int32)
        for name, value in weights.items()
        if not name.endswith("/geometry")
    }
    geometry = {
        name[: -len("/geometry")]: [int(v) for v in value]
        for name, value in weights.items()
        if name.endswith("/geometry")
    }

    def conv(x: Any, name: str) -> Any:
        stride, ph, pw = geometry[name]
        pads = [[0, 0], [ph, ph], [pw, pw], [0, 0]] if ph or pw else "VALID"
        y = tf.nn.conv2d(x, consts[f"{name}/kernel"], strides=stride, padding=pads)
        return tf.nn.relu(tf.nn.bias_add(y, consts[f"{name}/bias"]))

    def chain(x: Any, prefix: str, names: tuple[str, ...]) -> Any:
        for n in names:
            x = conv(x, f"{prefix}.{n}")
        return x

    def avg3(x: Any) -> Any:
        return tf.nn.avg_pool2d(x, 3, 1, "SAME")  # SAME averages exclude the padding

    def max3s2(x: Any) -> Any:
        return tf.nn.max_pool2d(x, 3, 2, "VALID")

    def block(x: Any, b: str, kind: str) -> Any:
        if kind == "A":
            branches = [
                conv(x, f"{b}.conv"),
                chain(x, b, ("tower.conv", "tower.conv_1")),
                chain(x, b, ("tower_1.conv", "tower_1.conv_1", "tower_1.conv_2")),
                conv(avg3(x), f"{b}.tower_2.conv"),
            ]
        elif kind == "B":
            branches = [
                conv(x, f"{b}.conv"),
                chain(x, b, ("tower.conv", "tower.conv_1", "tower.conv_2")),
                max3s2(x),
            ]
        elif kind == "C":
            branches = [
                conv(x, f"{b}.conv"),
                chain(x, b, _C[1:4]),
                chain(x, b, _C[4:]),
                conv(avg3(x), f"{b}.tower_2.conv"),
            ]
        elif kind == "D":
            branches = [
                chain(x, b, ("tower.conv", "tower.conv_1")),
                chain(x, b, _BLOCK_CONVS["D"][2:]),
                max3s2(x),
            ]
        else:
            a = conv(x, f"{b}.tower_conv")
            t = chain(x, b, ("tower_1_conv", "tower_1_conv_1"))
            pooled = tf.nn.max_pool2d(x, 3, 1, "SAME") if kind == "E_max" else avg3(x)
            branches = [
                conv(x, f"{b}.conv"),
                conv(a, f"{b}.tower_mixed_conv"),
                conv(a, f"{b}.tower_mixed_conv_1"),
                conv(t, f"{b}.tower_1_mixed_conv"),
                conv(t, f"{b}.tower_1_mixed_conv_1"),
                conv(pooled, f"{b}.tower_2_conv"),
            ]
        return tf.concat(branches, axis=3)

    def forward(images: Any) -> Any:
        x = tf.cast((images - 128.0) * (1.0 / 128.0), compute)
        for name in STEM_CONVS[:3]:
            x = conv(x, name)
        x = max3s2(x)
        x = conv(conv(x, "conv_3"), "conv_4")
        x = max3s2(x)
        for b, kind in BLOCKS:
            x = block(x, b, kind)
        return tf.cast(tf.reduce_mean(x, axis=[1, 2]), tf.float32)

    return forward
