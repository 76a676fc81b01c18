"""Start-up probe, run as a fresh process: session + model to the first featurized batch.

    python bench/spark_probe.py IMAGE_DIR [--conf local] [--precision float32] [--runtime auto]

Prints one JSON line of seconds since this process started (``t0`` = the first statement,
after the interpreter itself started): ``imports`` (pyspark + pool3), ``session``
(:func:`pool3.session.build_session`), ``bundle`` (model bytes on the driver),
``listed`` (input listed, while :class:`pool3.extraction.warmup.WarmUp` warms the workers unless
``--no-warm-up``), ``warm`` (warm-up done), ``first_batch`` (the first image of IMAGE_DIR
featurized through the featurize step's ``mapInPandas`` and collected: without the warm-up
that includes the Python worker start, TensorFlow import, model build from the shipped model file
and one inference) and ``second_batch`` (the same again: the warm cost).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images")
    parser.add_argument("--conf", default="local")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--runtime", default="auto", choices=("auto", "openvino", "tensorflow"))
    parser.add_argument("--no-warm-up", action="store_true", help="featurize.warm_up = false")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from pool3.config import load_config
    from pool3.extraction.listing import input_images
    from pool3.extraction.shipping import ship_model
    from pool3.extraction.step import featurize_files
    from pool3.extraction.warmup import WarmUp
    from pool3.model import load_bundle
    from pool3.session import build_session

    marks = {"imports": time.perf_counter() - T0}
    config = load_config(
        args.conf, overrides={"model.precision": args.precision, "model.runtime": args.runtime}
    )
    spark = build_session(config, app_name="pool3-bench-startup")
    marks["session"] = time.perf_counter() - T0
    bundle = load_bundle(config.model.source, home=config.model.home or None)
    marks["bundle"] = time.perf_counter() - T0
    model = ship_model(spark, bundle, config)
    with WarmUp(spark, model, enabled=not args.no_warm_up):
        files, listing = input_images(spark, config, args.images)
        marks["listed"] = time.perf_counter() - T0
    marks["warm"] = time.perf_counter() - T0
    one = files.limit(1)
    rows = (
        featurize_files(spark, one, model, config, root=listing.root)
        .select("features", "error")
        .collect()
    )
    marks["first_batch"] = time.perf_counter() - T0
    if not rows or rows[0]["error"] is not None:
        raise SystemExit(f"probe: first batch failed: {rows}")
    featurize_files(spark, one, model, config, root=listing.root).select("features").collect()
    marks["second_batch"] = time.perf_counter() - T0
    spark.stop()
    print(json.dumps({k: round(v, 3) for k, v in marks.items()}))


if __name__ == "__main__":
    main()
