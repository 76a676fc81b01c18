"""Cost of the TF-free resize: pool3's numpy TF1 bilinear vs TensorFlow's ResizeBilinear op.

    python bench/resize_bench.py [--repeats 30] [--no-write]

Per input size (the sizes the tests check, plus typical photos), the median of ``--repeats``
calls of each, alternated, on one thread, and the largest absolute difference between them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from common import append_results, calibrate, md_table

SIZES = [
    (1, 1),
    (28, 28),
    (100, 100),
    (299, 299),
    (427, 640),
    (1, 4000),
    (4000, 1),
    (1500, 2000),
    (3000, 4000),
]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from pool3.images.resize import resize_bilinear_tf1

    def tf_op(img: np.ndarray) -> np.ndarray:
        return tf.raw_ops.ResizeBilinear(
            images=tf.convert_to_tensor(img[None], tf.float32),
            size=[299, 299],
            align_corners=False,
            half_pixel_centers=False,
        ).numpy()[0]

    before = calibrate()
    rows = []
    rng = np.random.default_rng(0)
    for h, w in SIZES:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        times: dict[str, list[float]] = {"numpy": [], "tf": []}
        for _ in range(args.repeats):
            for name, fn in (("numpy", resize_bilinear_tf1), ("tf", tf_op)):
                t0 = time.perf_counter()
                fn(img)
                times[name].append(time.perf_counter() - t0)
        diff = float(np.abs(resize_bilinear_tf1(img) - tf_op(img)).max())
        np_ms, tf_ms = (1e3 * statistics.median(times[k]) for k in ("numpy", "tf"))
        rows.append([f"{h}x{w}", np_ms, tf_ms, diff])
    after = calibrate()
    append_results(
        "Resize cost (bench/resize_bench.py)",
        before=before,
        after=after,
        sections=[
            (
                f"Median ms per image over {args.repeats} alternated calls, 1 thread, to 299x299",
                md_table(
                    ["input (HxW, RGB uint8)", "numpy (pool3) ms", "TF op ms", "max abs diff"], rows
                ),
            )
        ],
        notes=["TF's op needs TensorFlow in the worker (~5 s import, ~0.5 GB): pool3 uses numpy"],
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
