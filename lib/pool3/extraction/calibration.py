"""int8 calibration: a seeded sample of the job's own images (or of ``model.calibration``).

NNCF post-training quantization needs a few hundred images that look like the data; the
job's input is the best such set. The sample is the ``model.calibration_images`` files whose
``sha256(seed:path)`` is smallest (reproducible, independent of listing order), chosen from
the listing's paths and lengths (no file content is read for that), then only the sampled
files are read, one at a time on the driver (:func:`pool3.storage.files.read_file`, as the
workers read them), and decoded and resized exactly as the workers do, so the driver holds
the 299x299 pixels, not the files. The quantized IR is cached by the contents of the
sample, so a rerun on the same input does not calibrate again; the manifest lists the
sampled paths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from pool3.config import Config
from pool3.extraction.listing import Listing, input_images
from pool3.extraction.shipping import ShippedModel, place_model, ship_model
from pool3.images.decode import ImageDecodeError, decode
from pool3.model import ModelBundle
from pool3.model.featurizer import resize_299
from pool3.model.runtime import Placement
from pool3.storage.files import read_file

log = logging.getLogger(__name__)

#: Seed of the calibration sample (the tutorial's ``random_state``).
SEED = 42
#: Files above this size are not sampled (their bytes come to the driver).
MAX_SAMPLE_BYTES = 16 << 20


def sample_paths(listing: Listing, n: int, seed: int = SEED) -> list[str]:
    """Up to ``n`` paths of a listing, those with the smallest ``sha256(seed:path)``."""
    keyed = sorted(
        (hashlib.sha256(f"{seed}:{p}".encode()).hexdigest(), p)
        for p, length in zip(listing.paths, listing.lengths, strict=True)
        if 0 < length <= MAX_SAMPLE_BYTES and p not in listing.errors
    )
    return [p for _, p in keyed[:n]]


def decoded_sample(
    listing: Listing, paths: list[str], config: Config
) -> tuple[np.ndarray, list[str], list[str]]:
    """(pixels (N, 299, 299, 3) float32, sha256 of each, path of each) of the decodable ones.

    A file that cannot be read or decoded is skipped with a log line (the featurize step
    gives it its error row); the sample is then smaller by one.
    """
    found: dict[str, tuple[np.ndarray, str]] = {}
    sizes = dict(zip(listing.paths, listing.lengths, strict=True))
    for path in paths:
        data, error = read_file(listing.root, path, sizes[path], max_bytes=MAX_SAMPLE_BYTES)
        if data is None:
            log.info("calibration: skipping %s (%s)", path, error)
            continue
        try:
            image = decode(
                data,
                max_pixels=config.featurize.max_pixels,
                apply_exif_orientation=config.featurize.apply_exif_orientation,
            )
            found[path] = (resize_299(image.pixels), hashlib.sha256(data).hexdigest())
        except ImageDecodeError as err:
            log.info("calibration: skipping %s (%s)", path, err.category)
        except Exception as err:  # as the workers do: one odd file never stops the run
            log.warning("calibration: skipping %s (%s: %s)", path, type(err).__name__, err)
    kept = sorted(found)
    pixels = [found[p][0] for p in kept]
    stacked = np.stack(pixels) if pixels else np.zeros((0, 299, 299, 3), np.float32)
    return stacked, [found[p][1] for p in kept], kept


def int8_bundle(
    spark: SparkSession,
    config: Config,
    bundle: ModelBundle,
    listing: Listing,
    placement: Placement,
) -> tuple[ModelBundle, Placement]:
    """The int8 IR of ``bundle`` calibrated on the run's images, and the placement with the
    calibration recorded (for the manifest)."""
    from pool3.model.openvino_ir import INT8_SETTINGS, quantize_int8, to_openvino

    source = config.model.calibration
    if source:
        _, listing = input_images(spark, config, source)
    wanted = config.model.calibration_images
    pixels, shas, paths = decoded_sample(listing, sample_paths(listing, wanted), config)
    log.info(
        "int8 calibration on %d images of %s (seeded sample, seed %d)",
        len(paths),
        source or "the input",
        SEED,
    )
    float_ir = to_openvino(bundle, home=config.model.home or None)
    quantized = quantize_int8(float_ir, pixels, sample_sha256=shas, home=config.model.home or None)
    calibration: dict[str, Any] = {
        "id": quantized.extra["variant"].removeprefix("int8-"),
        "source": source or "input",
        "images": len(paths),
        "seed": SEED,
        "settings": INT8_SETTINGS,
        "paths": paths,
    }
    return quantized, dataclasses.replace(placement, calibration=calibration)


def ship_for_input(
    spark: SparkSession,
    config: Config,
    bundle: ModelBundle,
    input_path: str,
    *,
    exclude: str | None = None,
    ir: ModelBundle | None = None,
) -> tuple[ShippedModel, tuple[DataFrame, Listing] | None]:
    """Place and ship the model of a featurize or classify run over ``input_path``.

    For int8 the input is listed first and the model calibrated on it; the listing is then
    returned too. Otherwise the listing is None: the caller lists while the workers warm up.
    ``exclude`` is the run's output (see :func:`pool3.extraction.listing.list_input`);
    ``ir``: the float IR, if already read (see :func:`pool3.extraction.shipping.ship_model`).
    """
    placement = place_model(spark, config)
    listed = None
    if placement.precision == "int8":
        listed = input_images(spark, config, input_path, exclude=exclude)
        bundle, placement = int8_bundle(spark, config, bundle, listed[1], placement)
    return ship_model(spark, bundle, config, placement, ir=ir), listed
