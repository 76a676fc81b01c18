# ruff: noqa: E501  (one claim a line reads better than wrapped tuples)
"""The figures the README (and conf/, docs/) quote: where each is measured.

``key`` names a figure of the scenario's recorded runs (``bench/results.jsonl``); ``history``
the section of bench/RESULTS.md's verbatim history the quoted value comes from, until the
command is run again and recorded. The report prints one line per claim.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    figure: str
    readme: str
    scenario: str
    key: str
    command: str
    history: str


_RT = "Runtime benchmark (bench/runtime_bench.py) (2026-12-01 21:26:33 UTC)"
_AMX = "Runtime benchmark (bench/runtime_bench.py) (2026-12-02 16:49:48 UTC)"
_SPARK = "Runtime benchmark, Spark only (bench/runtime_bench.py) (2026-12-07 00:32:55 UTC)"
_TRAIN = "Issue 35 in one place: training beyond the driver (2026-12-07, the sections above from 15:23 on)"
_FEAT = "python -m bench run featurize"
_SPK = "python -m bench run spark --sizes 800,5000"
_TR = "python -m bench run train --features F --rows 20000,200000 --solvers newton,spark"

CLAIMS = (
    Claim("TF bfloat16 / TF float32, in-process", "1.88x", "featurize", "tf-bfloat16/ratio", _FEAT, _RT),
    Claim("OpenVINO float32 / TF float32", "1.11x", "featurize", "ov-float32/ratio", _FEAT, _RT),
    Claim("OpenVINO bfloat16 / TF float32", "2.06x", "featurize", "ov-bfloat16/ratio", _FEAT, _RT),
    Claim("OpenVINO int8 / TF float32", "3.40x", "featurize", "ov-int8/ratio", _FEAT, _RT),
    Claim("OpenVINO bfloat16 cosine to float32 (min)", "0.993", "featurize", "ov-bfloat16/cosine_min", _FEAT, _RT),
    Claim("worker ready, OpenVINO bfloat16", "0.6-1.0 s", "featurize", "ov-bfloat16/ready_s", _FEAT, _RT),
    Claim("worker ready, TF float32", "3.3-5.6 s", "featurize", "tf-float32/ready_s", _FEAT, _RT),
    Claim("worker peak RSS, OpenVINO bfloat16", "286 MB", "featurize", "ov-bfloat16/peak_rss_mb", _FEAT, _RT),
    Claim("worker peak RSS, TF float32", "816 MB", "featurize", "tf-float32/peak_rss_mb", _FEAT, _RT),
    Claim("AMX: OpenVINO bfloat16 / TF float32 (1,000 JPEGs)", "4.26x", "featurize", "ov-bfloat16/ratio", _FEAT + " --n 1000", _AMX),
    Claim("Spark end to end / TF loop, 800 JPEGs", "1.63x", "spark", "800/auto/e2e_ratio", _SPK, _SPARK),
    Claim("Spark end to end / TF loop, 5,000 JPEGs", "2.02x", "spark", "5000/auto/e2e_ratio", _SPK, _SPARK),
    Claim("featurize phase / in-process OpenVINO, 800", "0.95x", "spark", "800/auto/phase_ratio", _SPK, _SPARK),
    Claim("fixed cost (wall - featurize job), 800", "5.2 s", "spark", "800/auto/outside_s", _SPK, _SPARK),
    Claim("fixed cost, two-size fit", "5.95 s", "spark", "fit/fixed_s", _SPK, _SPARK),
    Claim("peak RSS of a Spark Python worker, 800", "503-513 MB", "spark", "800/auto/worker_max_mb", _SPK, _SPARK),
    Claim("start-up, 32 images, outside the job (after)", "6.03 s", "startup", "32/after/outside_s",
          "python -m bench run startup --before-lib OLD/lib --sizes 32,800 --rounds 4",
          "pool3 featurize start-up, before / after: issue 25, this stop (75c8bff -> f67d6bb) (2026-12-07 00:54:54 UTC)"),
    Claim("driver JVM C1 only: session (default JIT -> C1)", "4.6 -> 3.0 s", "startup", "32/after/session_s",
          "python -m bench run startup --before-set spark.quick_jit=false --rounds 3",
          "Driver JVM: default JIT vs C1 only (spark.quick_jit) (2026-12-06 22:18:27 UTC)"),
    Claim("read + hash in the workers, pool3 / binaryFile", "2.46x", "read", "read_ratio",
          "python -m bench run read", "Input read path (bench/read_bench.py) (2026-12-01 23:55:42 UTC)"),
    Claim("driver listing, pool3 / Spark's file index", "19x", "read", "listing_ratio",
          "python -m bench run read", "Input read path (bench/read_bench.py) (2026-12-01 23:55:42 UTC)"),
    Claim("prefetch on / off, local files", "0.99x", "prefetch", "0ms/ratio",
          "python -m bench run prefetch --latency-ms 0,20",
          "Worker prefetch on / off (featurize.prefetch), the mapInPandas body without Spark (2026-12-07 04:12:23 UTC)"),
    Claim("prefetch on / off, 20 ms before each read", "1.33x", "prefetch", "20ms/ratio",
          "python -m bench run prefetch --latency-ms 0,20",
          "Worker prefetch on / off (featurize.prefetch), the mapInPandas body without Spark (2026-12-07 04:12:23 UTC)"),
    Claim("Fashion-MNIST accuracy, float32 / bfloat16 / int8", "82.75 / 83.00 / 83.00 %", "precision", "int8/accuracy",
          "python -m bench run precision", "Precision vs accuracy (bench/precision_accuracy.py) (2026-12-01 21:35:34 UTC)"),
    Claim("TF1 resize in numpy, per image, 1x1 to 12 MP", "1.4-2.8 ms", "resize", "3000x4000/numpy/ms",
          "python -m bench run resize", "Resize cost (bench/resize_bench.py) (2026-12-01 21:55:31 UTC)"),
    Claim("pool3 train 20k, newton, end to end", "26.6 s", "train", "20000/newton/total_s", _TR, _TRAIN),
    Claim("pool3 train 20k, spark, end to end", "37.9 s", "train", "20000/spark/total_s", _TR, _TRAIN),
    Claim("pool3 train 200k, newton, end to end", "100 s", "train", "200000/newton/total_s", _TR, _TRAIN),
    Claim("pool3 train 200k, spark, end to end", "266 s", "train", "200000/spark/total_s", _TR, _TRAIN),
    Claim("near duplicates, LSH, 100,000 rows", "~70 s", "duplicates", "100000/lsh/seconds",
          "python -m bench run duplicates --rows 20000,100000",
          "Near-duplicate search (bench/duplicates_bench.py) (2026-12-02 08:23:50 UTC)"),
    Claim("Spark Connect: model shipped (87 MB IR)", "~1 s", "connect", "connect/ship_s",
          "python -m bench run connect --n 800 --rounds 3",
          "pool3 featurize before/after Spark Connect support, 800 JPEGs (2026-12-06 07:08:20 UTC)"),
)  # fmt: skip
