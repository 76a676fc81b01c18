"""pool3's input path against Spark's ``binaryFile`` source (which pool3 used until issue
12), in one ``local[2]`` session, alternated round by round after an untimed warm-up:
(1) every file of ``images`` JPEGs read and hashed in the Python workers (``read_s``),
(2) the driver listing of ``listing_files`` files in 100 folders (``list_s``). Local disk
only. ``read_ratio`` and ``listing_ratio``: Spark's median seconds / pool3's.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.core import Figures, FuncVariant, Scenario, alternate, median_of, medians
from bench.harness.images import write_jpegs


def variants(spark: Any, images: Path, many: Path, o: Any) -> list[FuncVariant]:
    """Read + hash in the workers, and the driver listing: Spark's source and pool3's."""
    from pool3.extraction.incremental import hash_frame
    from pool3.extraction.kernel import WorkerOptions
    from pool3.extraction.listing import files_frame, list_input

    def binary_file(folder: Path) -> Any:
        reader = spark.read.format("binaryFile").option("recursiveFileLookup", "true")
        return reader.option("pathGlobFilter", "*.jpg").load(str(folder))

    def spark_source(_: Any) -> Figures:
        def hashed(frames):  # type: ignore[no-untyped-def]
            import pandas as pd

            for f in frames:
                yield pd.DataFrame(
                    {"sha256": [hashlib.sha256(bytes(c)).hexdigest() for c in f["content"]]}
                )

        assert binary_file(images).mapInPandas(hashed, "sha256 string").count() == o.images
        return {}

    def pool3_source(_: Any) -> Figures:
        listing = list_input(str(images), extensions=("jpg",))
        opts = WorkerOptions(fingerprint="bench", root=listing.root)

        def hashed(frames):  # type: ignore[no-untyped-def]
            for f in frames:
                yield hash_frame(f, opts)[["path", "sha256"]]

        frame = files_frame(spark, listing)
        assert frame.mapInPandas(hashed, "path string, sha256 string").count() == o.images
        return {}

    def spark_list(_: Any) -> Figures:
        assert len(binary_file(many).inputFiles()) == o.listing_files
        return {}

    def pool3_list(_: Any) -> Figures:
        assert list_input(str(many), extensions=("jpg",)).total == o.listing_files
        return {}

    fns = {"read/spark": spark_source, "read/pool3": pool3_source,
           "list/spark": spark_list, "list/pool3": pool3_list}  # fmt: skip
    return [FuncVariant(k, f) for k, f in fns.items()]


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    from pool3.config import load_config
    from pool3.session import build_session

    extra = {"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1"}
    overrides = {"spark.master": "local[2]", "spark.log_level": "ERROR", "spark.extra": extra}
    spark = build_session(load_config(overrides=overrides, env={}), app_name="pool3-bench-read")
    tmp = tempfile.TemporaryDirectory(prefix="pool3-bench-")
    images, many = Path(tmp.name) / "images", Path(tmp.name) / "many"
    write_jpegs(images, o.images)
    for i in range(o.listing_files):
        (d := many / f"d{i % 100:03d}").mkdir(parents=True, exist_ok=True)
        (d / f"x_{i}.jpg").write_bytes(b"\xff\xd8")
    try:
        records = alternate(variants(spark, images, many, o), rounds=o.rounds, warmup=1)
    finally:
        spark.stop()
        tmp.cleanup()
    figures = medians(records)
    for kind, name in (("read", "read_ratio"), ("list", "listing_ratio")):
        spark_s = median_of(records, "seconds", variant=f"{kind}/spark")
        figures[name] = spark_s / (median_of(records, "seconds", variant=f"{kind}/pool3") or 1)
    return figures, records, [f"{o.images} JPEGs read; {o.listing_files} files listed"]


SCENARIO = Scenario(
    name="read",
    doc=__doc__ or "",
    run=run,
    options={"images": 800, "listing_files": 20000, "rounds": 3},
    quick={"images": 16, "listing_files": 200, "rounds": 1},
)
