"""Cost of pool3's input path: list on the driver + read in the worker (pyarrow.fs), against
Spark's ``binaryFile`` source, which pool3 used before.

    python bench/read_bench.py [--images 800] [--listing-files 20000] [--rounds 3] [--no-write]

Two measurements, each variant alternated round by round in one Spark session (local[2]):

read + hash
    Every file's bytes reach a Python worker and are hashed (sha256): ``binaryFile`` ->
    ``mapInPandas`` (the bytes cross the JVM and Arrow), against pool3's listing ->
    ``path, length`` frame -> ``mapInPandas`` reading each file (``pool3.extraction.kernel.
    hash_frame``). Inference is left out, so this is the read path's own cost.
listing
    Driver-side listing of ``--listing-files`` empty-ish files in 100 folders:
    ``binaryFile(...).inputFiles()`` (Spark's file index) against
    :func:`pool3.extraction.listing.list_input`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from common import append_results, calibrate, md_table
from images_gen import write_jpegs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--listing-files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from pool3.config import load_config
    from pool3.extraction.kernel import WorkerOptions, hash_frame
    from pool3.extraction.listing import files_frame, list_input
    from pool3.session import build_session

    config = load_config(
        overrides={
            "spark.master": "local[2]",
            "spark.log_level": "ERROR",
            "spark.extra": {
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.host": "127.0.0.1",
            },
        },
        env={},
    )
    spark = build_session(config, app_name="pool3-bench-read")
    tmp = Path(tempfile.mkdtemp(prefix="pool3-read-bench-"))
    images = tmp / "images"
    write_jpegs(images, args.images)
    total_mb = sum(p.stat().st_size for p in images.iterdir()) / 1e6
    many = tmp / "many"
    for i in range(args.listing_files):
        d = many / f"d{i % 100:03d}"
        if i < 100:
            d.mkdir(parents=True)
        (d / f"x_{i}.jpg").write_bytes(b"\xff\xd8")
    before = calibrate()

    def spark_binary_file() -> int:
        def hashed(frames):  # type: ignore[no-untyped-def]
            import pandas as pd

            for f in frames:
                yield pd.DataFrame(
                    {"sha256": [hashlib.sha256(bytes(c)).hexdigest() for c in f["content"]]}
                )

        files = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.jpg")
            .load(str(images))
        )
        return files.mapInPandas(hashed, "sha256 string").count()

    def pool3_reader() -> int:
        listing = list_input(str(images), extensions=("jpg",))
        opts = WorkerOptions(fingerprint="bench", root=listing.root)

        def hashed(frames):  # type: ignore[no-untyped-def]
            for f in frames:
                yield hash_frame(f, opts)

        frame = files_frame(spark, listing)
        return frame.mapInPandas(hashed, "path string, length long, sha256 string").count()

    def spark_listing() -> int:
        return len(
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.jpg")
            .load(str(many))
            .inputFiles()
        )

    def pool3_listing() -> int:
        return list_input(str(many), extensions=("jpg",)).total

    variants = {
        "read": {"Spark binaryFile": spark_binary_file, "pool3 (list + worker read)": pool3_reader},
        "list": {"Spark file index": spark_listing, "pool3 list_input": pool3_listing},
    }
    times: dict[str, dict[str, list[float]]] = {k: {n: [] for n in v} for k, v in variants.items()}
    for kind in variants:  # one untimed run of each: JIT, page cache, Python workers
        for fn in variants[kind].values():
            fn()
    for _ in range(args.rounds):
        for kind, fns in variants.items():
            for name, fn in fns.items():
                t0 = time.perf_counter()
                n = fn()
                times[kind][name].append(time.perf_counter() - t0)
                expected = args.images if kind == "read" else args.listing_files
                assert n == expected, (name, n, expected)
    after = calibrate()
    spark.stop()

    def rows(kind: str, count: int, unit: str) -> list[list[object]]:
        base = statistics.median(next(iter(times[kind].values())))
        out = []
        for name, ts in times[kind].items():
            med = statistics.median(ts)
            out.append(
                [
                    name,
                    ", ".join(f"{t:.2f}" for t in ts),
                    f"{count / med:.0f} {unit}/s",
                    f"{base / med:.2f}x",
                ]
            )
        return out

    append_results(
        "Input read path (bench/read_bench.py)",
        before=before,
        after=after,
        sections=[
            (
                f"Read + sha256 of {args.images} JPEGs ({total_mb:.1f} MB) in the Python "
                f"workers, local[2], {args.rounds} alternated rounds",
                md_table(
                    ["variant", "seconds", "median rate", "vs binaryFile"],
                    rows("read", args.images, "files"),
                ),
            ),
            (
                f"Driver listing of {args.listing_files} files in 100 folders",
                md_table(
                    ["variant", "seconds", "median rate", "vs Spark"],
                    rows("list", args.listing_files, "files"),
                ),
            ),
        ],
        notes=[
            "local disk, page cache warm after the untimed first round; on HDFS/S3 both "
            "paths are bound by the store (pyarrow's clients vs Hadoop's)",
        ],
        write=not args.no_write,
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
