"""The worker body without Spark: bytes in, one row per file out, errors recorded."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from paths import GOLDEN
from pool3.extraction.kernel import (
    ACTIVATION_MB_PER_IMAGE,
    MAX_AUTO_BATCH,
    WORKER_BASE_MB,
    WorkerOptions,
    auto_batch_size,
    featurize_batches,
)
from pool3.storage.schemas import FEATURE_COLUMNS


def test_auto_batch_size_follows_memory_and_device():
    assert auto_batch_size(512) == 1  # below the worker's base: still one image
    # what fits above the base, one ACTIVATION_MB_PER_IMAGE each, below the cap
    for n in range(1, MAX_AUTO_BATCH + 1):
        assert auto_batch_size(WORKER_BASE_MB + n * ACTIVATION_MB_PER_IMAGE) == n
    assert auto_batch_size(WORKER_BASE_MB + 2 * ACTIVATION_MB_PER_IMAGE - 1) == 1
    assert auto_batch_size(64_000) == MAX_AUTO_BATCH
    assert auto_batch_size(512, gpu=True) == 64


def test_rows_in_input_order_with_errors(featurizer):
    png = (GOLDEN / "china.png").read_bytes()
    buf = io.BytesIO()
    Image.open(GOLDEN / "flower.png").save(buf, "JPEG", quality=90)
    frame = pd.DataFrame(
        {
            "path": [
                "file:/x/china_1.png",
                "file:/x/junk_2.jpg",
                "file:/x/big_3.jpg",
                "file:/x/flower_4.jpg",
            ],
            "length": [len(png), 5, 99 << 20, len(buf.getvalue())],
            "content": [png, b"hello", None, buf.getvalue()],
        }
    )
    opts = WorkerOptions(fingerprint="fp", batch_size=0, worker_memory_mb=1100)
    calls = []
    (out,) = list(featurize_batches(iter([frame]), lambda: featurizer, opts, calls.append))
    assert list(out.columns) == FEATURE_COLUMNS
    assert out["path"].tolist() == frame["path"].tolist()
    assert out["label"].tolist() == ["china", "junk", "big", "flower"]
    assert out["error"].iloc[1].startswith("not_an_image: ")
    assert out["error"].iloc[2].startswith("too_large: ")
    assert out["error"].iloc[0] is None and out["error"].iloc[3] is None
    assert out["features"].iloc[1] is None and out["sha256"].iloc[2] is None
    direct = featurizer.featurize([np.asarray(Image.open(GOLDEN / "china.png").convert("RGB"))])
    assert np.abs(out["features"].iloc[0] - direct[0]).max() < 1e-5
    assert (out["width"].iloc[0], out["height"].iloc[0]) == (299, 299)
    assert calls[0].images == 4 and calls[0].errors == 2
