"""Cost of the TF-free resize: pool3's numpy TF1 bilinear against TensorFlow's
``ResizeBilinear`` op, to 299 x 299 on one thread, per input size (``sizes``: HxW, the
sizes the tests check plus typical photos): median ``ms`` per image over ``rounds``
alternated calls of each, and ``max_abs_diff`` between them (0 expected).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bench.harness.core import Figures, FuncVariant, Scenario, alternate, medians


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from pool3.images.resize import resize_bilinear_tf1

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    def tf_op(img: np.ndarray) -> np.ndarray:
        images = tf.convert_to_tensor(img[None], tf.float32)
        out = tf.raw_ops.ResizeBilinear(images=images, size=[299, 299], align_corners=False)
        return out.numpy()[0]

    rng = np.random.default_rng(0)
    shapes = [tuple(map(int, s.split("x"))) for s in o.sizes.split(",")]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
    variants = [FuncVariant(n, lambda img, f=f: f(img) is None or {}) for n, f in
                (("numpy", resize_bilinear_tf1), ("tf", tf_op))]  # fmt: skip
    label = lambda img: f"{img.shape[0]}x{img.shape[1]}"  # noqa: E731
    records = alternate(variants, rounds=o.rounds, warmup=1, items=images, label=label)
    for r in records:
        r["ms"] = 1e3 * r.pop("seconds")
    figures = medians(records)
    for img in images:
        figures[f"{label(img)}/max_abs_diff"] = float(
            np.abs(resize_bilinear_tf1(img) - tf_op(img)).max()
        )
    return figures, records, ["TF's op needs TensorFlow in the worker: pool3 uses numpy"]


SCENARIO = Scenario(
    name="resize",
    doc=__doc__ or "",
    run=run,
    options={"sizes": "1x1,28x28,100x100,299x299,427x640,1x4000,4000x1,1500x2000,3000x4000",
             "rounds": 30},
    quick={"sizes": "1x1,100x100,427x640", "rounds": 2},
)  # fmt: skip
