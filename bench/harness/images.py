"""Deterministic benchmark images: JPEGs cut from real photos.

The content comes from scikit-learn's two sample photos (``china.jpg``, ``flower.jpg``,
427 x 640): random crops (10-100 % of the short side, random aspect 0.75-1.33), optionally
mirrored, rescaled to the target size and saved as JPEG quality 75-95. Most are 100 x 100
like the tutorial's product photos; a fraction are 500 x 500. Same seed, same bytes.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image


def sample_photos() -> list[np.ndarray]:
    """scikit-learn's sample photos as (427, 640, 3) uint8 arrays."""
    from sklearn.datasets import load_sample_images

    return [np.asarray(img, dtype=np.uint8) for img in load_sample_images().images]


def jpeg_bytes(photo: np.ndarray, size: int, rng: np.random.Generator) -> bytes:
    """One random crop of ``photo`` rescaled to ``size`` x ``size``, as JPEG bytes."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.1, 1.0))
    aspect = rng.uniform(0.75, 1.33)
    ch, cw = (
        max(8, min(h, int(side / np.sqrt(aspect)))),
        max(8, min(w, int(side * np.sqrt(aspect)))),
    )
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = photo[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    img = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(75, 96)))
    return buf.getvalue()


def write_jpegs(
    out_dir: str | os.PathLike[str],
    n: int,
    *,
    big_fraction: float = 0.1,
    small: int = 100,
    big: int = 500,
    seed: int = 0,
) -> list[Path]:
    """Write ``n`` JPEGs (``round(n * big_fraction)`` of ``big`` px, the rest ``small`` px).

    Files are named ``<class>_<i>.jpg`` with the class ``china`` or ``flower`` (the source
    photo), so pool3's file-name labels work. Returns the paths in index order.
    """
    photos = sample_photos()
    names = ("china", "flower")
    rng = np.random.default_rng(seed)
    n_big = round(n * big_fraction)
    big_at = set(rng.choice(n, size=n_big, replace=False).tolist()) if n_big else set()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        k = int(rng.integers(0, len(photos)))
        data = jpeg_bytes(photos[k], big if i in big_at else small, rng)
        path = out / f"{names[k]}_{i:06d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


def link_subset(paths: list[Path], out_dir: str | os.PathLike[str]) -> Path:
    """A folder holding hard links (or copies) of ``paths``: same bytes, no re-encoding."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for p in paths:
        target = out / p.name
        try:
            os.link(p, target)
        except OSError:
            target.write_bytes(p.read_bytes())
    return out
