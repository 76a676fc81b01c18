"""One Spark command run: the session (Spark Classic or Spark Connect), the command, the stop."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pool3.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pool3.commands.preload import Preload
    from pool3.training.classifier import LinearModel


def run_command(command: str, config: Config, *, paths: dict[str, Any]) -> dict[str, Any]:
    """Run ``featurize``, ``train`` or ``classify`` in a new session; returns its summary.

    ``paths`` holds the command's arguments (``input``, ``output``, ``features``, ``model``,
    ``run_id``). The session is Spark Connect when ``spark.remote`` / ``SPARK_REMOTE`` name a
    server (:func:`pool3.session.build_session`), and is stopped however the run ends.
    While the session starts, featurize and classify load their model in the background
    (:class:`pool3.commands.preload.Preload`).
    """
    import time

    from pool3.commands.preload import Preload
    from pool3.session import build_session, stop_session

    started = time.monotonic()
    config, classifier = _before_spark(command, config, paths)
    images = command in ("featurize", "classify")  # the JVM mostly waits for Python workers
    preload = Preload(config).start() if images else None
    spark = build_session(config, app_name=f"pool3-{command}", quick_jit=images)
    session_s = round(time.monotonic() - started, 3)
    try:
        return _dispatch(command, spark, config, paths, session_s, preload, classifier)
    finally:
        stop_session(spark)


def _dispatch(
    command: str,
    spark: SparkSession,
    config: Config,
    paths: dict[str, Any],
    session_s: float,
    preload: Preload | None,
    classifier: LinearModel | None,
) -> dict[str, Any]:
    """The command itself, in the session ``run_command`` started."""
    if command == "featurize":
        from pool3.commands.featurize import run_featurize

        return run_featurize(
            spark,
            config,
            input_path=paths["input"],
            output_path=paths["output"],
            run_id=paths.get("run_id"),
            timings={"session": session_s},
            preload=preload,
        )
    if command == "train":
        from pool3.commands.train import run_train

        return run_train(
            spark,
            config,
            features_path=paths["features"],
            model_dir=paths["output"],
            run_id=paths.get("run_id"),
        )
    from pool3.commands.classify import run_classify

    return run_classify(
        spark,
        config,
        input_path=paths["input"],
        model_dir=paths["model"],
        output_path=paths["output"],
        run_id=paths.get("run_id"),
        preload=preload,
        classifier=classifier,
    )


def _before_spark(
    command: str, config: Config, paths: dict[str, Any]
) -> tuple[Config, LinearModel | None]:
    """What must hold before a session starts: the MLflow tracking server answers
    (``--mlflow``; where it does not and ``mlflow.required`` is false, the run goes on
    untracked), and a ``models:/``/``runs:/`` classifier is fetched from MLflow."""
    classifier = None
    if command == "classify":
        from pool3.tracking.registry import fetch_classifier, is_mlflow_uri

        if is_mlflow_uri(paths["model"]):
            classifier = fetch_classifier(paths["model"], config)
    elif config.mlflow.enabled:
        from pool3.tracking.server import connect

        if connect(config) is None:
            config = replace(config, mlflow=replace(config.mlflow, enabled=False))
    return config, classifier
