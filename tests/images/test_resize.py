"""The numpy TF1 resize against TensorFlow's own ``ResizeBilinear`` kernel (the graph's op)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from paths import GOLDEN
from pool3.images.decode import decode
from pool3.images.resize import resize_bilinear_tf1


def tf_resize(img: np.ndarray, size: int = 299) -> np.ndarray:
    return tf.raw_ops.ResizeBilinear(
        images=tf.convert_to_tensor(img[None], tf.float32),
        size=[size, size],
        align_corners=False,
        half_pixel_centers=False,
    ).numpy()[0]


@pytest.mark.parametrize("name", ["china", "flower", "fmnist_ankle_boot", "fmnist_t_shirt"])
def test_equals_tf_on_golden_images(name):
    img = np.asarray(Image.open(GOLDEN / f"{name}.png").convert("RGB"))
    assert np.abs(resize_bilinear_tf1(img) - tf_resize(img)).max() < 1e-4


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (1, 4000, 3), (4000, 1, 3), (28, 28, 3), (7, 1001, 3), (300, 298, 1)]
)
def test_equals_tf_on_odd_sizes(shape):
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    out = resize_bilinear_tf1(img)
    assert out.shape == (299, 299, shape[2]) and out.dtype == np.float32
    assert np.abs(out - tf_resize(img)).max() < 1e-4


def test_equals_tf_on_a_12_megapixel_jpeg_after_draft_decode():
    rng = np.random.default_rng(12)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((4000, 3000), Image.BILINEAR)  # smooth, like a photo
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    pixels = decode(buf.getvalue()).pixels
    assert pixels.shape[0] < 3000  # decoded at a reduced DCT scale
    assert np.abs(resize_bilinear_tf1(pixels) - tf_resize(pixels)).max() < 1e-4


def test_float_input_and_other_sizes():
    img = np.random.default_rng(3).uniform(0, 255, (50, 70, 3)).astype(np.float32)
    assert np.abs(resize_bilinear_tf1(img, 17) - tf_resize(img, 17)).max() < 1e-4
