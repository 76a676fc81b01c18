"""The classic graph's resize in numpy: TF1 ``ResizeBilinear`` without TensorFlow.

``align_corners=False, half_pixel_centers=False``: output pixel ``d`` of an axis samples the
source coordinate ``s = d * (in / out)`` (float32, as TensorFlow's legacy scaler computes
it) and interpolates between ``floor(s)`` and ``min(floor(s) + 1, in - 1)`` with weight
``s - floor(s)``; rows are interpolated along x first, then along y, in float32, as the
TensorFlow kernel does. Equal to ``tf.raw_ops.ResizeBilinear`` within float32 rounding
(tests/images/test_resize.py: the golden images, 1x1, 1x4000, 4000x1 and a 12 MP image);
the cost per image is in bench/RESULTS.md.

Only the two source rows and the two source columns each output pixel needs are read, so
the cost grows with ``size * width``, not with the image's area (~1.5-3 ms per image on
one core, from 1x1 to 12 MP).
"""

from __future__ import annotations

import numpy as np


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, lerp weight) of each output position along one axis."""
    scale = np.float32(n_in / n_out)
    src = np.arange(n_out, dtype=np.float32) * scale
    low = np.floor(src)
    lerp = (src - low).astype(np.float32)
    low_i = np.minimum(low.astype(np.int64), n_in - 1)
    high_i = np.minimum(low_i + 1, n_in - 1)
    return low_i, high_i, lerp


def resize_bilinear_tf1(img: np.ndarray, size: int = 299) -> np.ndarray:
    """Bilinear resize with TF1 ``resize_bilinear`` semantics (the tutorial's graph).

    Parameters
    ----------
    img : numpy.ndarray of shape (height, width, channels)
        Any real dtype (uint8 from :func:`pool3.images.decode.decode_image`), height and
        width >= 1.
    size : int
        Output height and width.

    Returns
    -------
    numpy.ndarray of shape (size, size, channels), float32
        Values in the input's range (0..255 for uint8), not normalised.
    """
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(
            f"img must have shape (height, width, channels) with height, width >= 1; "
            f"got shape {arr.shape}; decode with pool3.images.decode.decode_image first"
        )
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    y0, y1, wy = _axis(arr.shape[0], size)
    x0, x1, wx = _axis(arr.shape[1], size)
    # one gather of the two source rows of every output row, one of their two columns (in
    # the input's dtype, 4x less memory than float32), then the lerps in place
    rows = np.take(arr, np.concatenate([y0, y1]), axis=0)
    near = np.take(rows, np.concatenate([x0, x1]), axis=1).astype(np.float32)
    tl, tr = near[:size, :size], near[:size, size:]
    bl, br = near[size:, :size], near[size:, size:]
    wx = wx[None, :, None]
    top = tr - tl
    top *= wx
    top += tl
    out = br - bl
    out *= wx
    out += bl
    out -= top
    out *= wy[:, None, None]
    out += top
    return out
