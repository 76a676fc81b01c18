"""A classifier from an MLflow model URI, for ``pool3 classify --model models:/NAME@ALIAS``.

``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/m-<id>`` (MLflow 3's logged
models) and ``runs:/RUN_ID/model`` name a pool3 model (:mod:`pool3.tracking.flavor`); only its
classifier's two small files are downloaded (the featurizer comes from ``model.source``, and
classify checks their fingerprints as it does for a model directory). A name, version or alias
that does not exist is a ModelError naming what does.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from pool3.config import Config
from pool3.errors import ModelError
from pool3.tracking.flavor import CLASSIFIER, DATA, FLAVOR_NAME
from pool3.tracking.server import connect, import_mlflow, reason
from pool3.training.classifier import JSON_NAME, NPZ_NAME, LinearModel, load_model

SCHEMES = ("models:/", "runs:/")
_NAMED = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


def is_mlflow_uri(uri: str) -> bool:
    """Whether ``--model`` names an MLflow model rather than a model directory."""
    return uri.startswith(SCHEMES)


def _check_named(uri: str) -> None:
    """A clear ModelError where a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` points
    at no registered model, alias or version."""
    match = _NAMED.match(uri)
    if match is None:  # models:/m-<id>, runs:/...: MLflow's own error is clear enough
        return
    mlflow = import_mlflow()
    client = mlflow.MlflowClient()
    name = match["name"]
    try:
        model = client.get_registered_model(name)
    except Exception as err:
        raise ModelError(
            f"--model {uri}: there is no registered model {name!r} ({reason(err)}); register "
            "one with pool3 train --mlflow --set mlflow.registered_model_name=NAME"
        ) from err
    aliases = dict(getattr(model, "aliases", {}) or {})
    if match["alias"] and match["alias"] not in aliases:
        known = ", ".join(f"@{a} -> version {v}" for a, v in sorted(aliases.items())) or "none"
        raise ModelError(
            f"--model {uri}: the alias {match['alias']!r} of {name!r} points nowhere (its "
            f"aliases: {known}); set it with MlflowClient().set_registered_model_alias or "
            "pool3 train --set mlflow.alias=..."
        )


def fetch_classifier(uri: str, config: Config) -> LinearModel:
    """The classifier of the pool3 MLflow model at ``uri`` (downloaded to a temporary
    folder and checked as :func:`pool3.training.classifier.load_model` checks a directory).

    Raises OutputError where the tracking server cannot be reached, ModelError where ``uri``
    names nothing or not a pool3 model."""
    connect(config)
    _check_named(uri)
    from mlflow.models import Model
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with tempfile.TemporaryDirectory(prefix="pool3-classifier-") as tmp:
        try:
            repo = get_artifact_repository(uri)
            mlmodel = Model.load(repo.download_artifacts("MLmodel", tmp))
        except Exception as err:
            raise ModelError(
                f"--model {uri} cannot be read from MLflow ({reason(err)}): check the name, "
                "version, alias or run id (MlflowClient().search_registered_models lists them)"
            ) from err
        if FLAVOR_NAME not in mlmodel.flavors:
            raise ModelError(
                f"--model {uri} is an MLflow model of flavors {sorted(mlmodel.flavors)}, not a "
                "pool3 model: log one with pool3 train --mlflow"
            )
        data = mlmodel.flavors[FLAVOR_NAME].get("data", DATA)
        for name in (JSON_NAME, NPZ_NAME):
            repo.download_artifacts(f"{data}/{CLASSIFIER}/{name}", tmp)
        return load_model(str(Path(tmp) / data / CLASSIFIER))
