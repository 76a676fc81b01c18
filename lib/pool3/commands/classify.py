"""``pool3 classify``: featurize and predict in one Spark pass, then gate and commit."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from pyspark.sql import SparkSession

from pool3.commands.lifecycle import finish_run, image_summary, output_run, staged_counts
from pool3.commands.preload import Preload, model_for_run
from pool3.config import Config
from pool3.errors import ModelError
from pool3.extraction.calibration import ship_for_input
from pool3.extraction.listing import input_images
from pool3.extraction.step import Telemetry
from pool3.extraction.warmup import WarmUp
from pool3.model import ModelBundle
from pool3.scoring.predict import classify_files
from pool3.storage.fs import FS_ERRORS, exists, why
from pool3.storage.outputs import SUCCESS_NAME, OutputTarget, is_complete
from pool3.storage.schemas import PREDICTIONS_SCHEMA
from pool3.training.classifier import LinearModel, load_model

log = logging.getLogger(__name__)


def check_model_dir(spark: SparkSession, model_dir: str) -> None:
    """Refuse (ModelError) a model directory that is missing or not committed."""
    try:
        present, committed = exists(spark, model_dir), is_complete(spark, model_dir)
    except FS_ERRORS as err:
        raise ModelError(
            f"cannot read the model directory {model_dir}: {why(err)}; check --model"
        ) from err
    if not present:
        raise ModelError(
            f"model directory {model_dir} does not exist; point --model at the output of "
            "pool3 train (a path or URI, e.g. hdfs:///models/m)"
        )
    if not committed:
        raise ModelError(
            f"{model_dir} has no {SUCCESS_NAME}: it is not a committed model directory (a "
            "train run still writing, or one that failed); point --model at the output of "
            "a finished pool3 train"
        )


def run_classify(
    spark: SparkSession,
    config: Config,
    *,
    input_path: str,
    model_dir: str,
    output_path: str,
    run_id: str | None = None,
    preload: Preload | None = None,
    classifier: LinearModel | None = None,
) -> dict[str, Any]:
    """Score every image under ``input_path`` with the classifier in ``model_dir``.

    ``preload``: the featurizer loaded while the session started
    (:class:`pool3.commands.preload.Preload`); ``classifier``: the one ``model_dir`` names,
    read already (an MLflow model URI, :func:`pool3.tracking.registry.fetch_classifier`)."""
    started = time.monotonic()
    if classifier is None:
        check_model_dir(spark, model_dir)
        classifier = load_model(model_dir, spark=spark)
    model = classifier
    bundle, ir = model_for_run(config, preload)
    if model.fingerprint != bundle.fingerprint:
        raise ModelError(
            f"the classifier in {model_dir} was trained on features {model.fingerprint}, but "
            f"the featurizer is {bundle.fingerprint}: score with the model source it was "
            "trained with (model.source), or retrain on features of this model"
        )
    with output_run(spark, output_path, config, run_id=run_id, command="classify") as target:
        return _classify(
            spark,
            config,
            target,
            bundle,
            model,
            ir=ir,
            input_path=input_path,
            model_dir=model_dir,
            output_path=output_path,
            started=started,
        )


def _precision_note(trained_at: str | None, scored: str) -> str | None:
    """A warning (logged, and kept in the manifest) when the classifier was trained on
    features of another precision than the ones it scores; None when they match."""
    if trained_at is None or trained_at == scored:
        return None
    note = (
        f"the classifier was trained on {trained_at} features and scores "
        f"{scored} features of the same weights (predictions may differ "
        "slightly; --precision sets the scoring precision)"
    )
    log.warning("classify: %s", note)
    return note


def _classify(
    spark: SparkSession,
    config: Config,
    target: OutputTarget,
    bundle: ModelBundle,
    model: LinearModel,
    *,
    ir: ModelBundle | None,
    input_path: str,
    model_dir: str,
    output_path: str,
    started: float,
) -> dict[str, Any]:
    shipped, listed = ship_for_input(spark, config, bundle, input_path, exclude=output_path, ir=ir)
    trained_at = model.meta.get("feature_precision")
    precision_note = _precision_note(trained_at, shipped.row_precision)
    with WarmUp(spark, shipped, enabled=config.featurize.warm_up):
        files, listing = listed or input_images(spark, config, input_path, exclude=output_path)
        total = listing.total
    ready = time.monotonic()
    tel = Telemetry()
    # labels are not part of a prediction: skip computing them in the workers
    cfg = replace(config, featurize=replace(config.featurize, labels="none"))

    predictions = classify_files(
        spark, files, shipped, model, cfg, telemetry=tel, root=listing.root
    )
    predictions.write.mode("overwrite").parquet(target.staging)
    written = time.monotonic()
    counts = staged_counts(spark, target.staging, PREDICTIONS_SCHEMA, expected=total)
    summary = image_summary(
        input_path=input_path,
        target=target,
        listing=listing,
        counts=counts,
        shipped=shipped,
        started=started,
        telemetry=tel,
        classifier=model_dir,
        trained_precision=trained_at,
        startup_seconds=round(ready - started, 3),
        classify_seconds=round(written - ready, 3),
        # the rate of the Spark phase, as featurize reports it (was missing: 0.0 images/s)
        images_per_second=round(total / max(written - ready, 1e-9), 2),
    )
    finish_run(
        spark,
        target,
        config,
        command="classify",
        summary=summary,
        inputs={"images": input_path, "classifier": model_dir},
        listing=listing,
        shipped=shipped,
        durations={"total": summary["wall_seconds"]},
        manifest_extra={"precision_note": precision_note} if precision_note else None,
    )
    return summary
