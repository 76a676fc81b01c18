"""The MLflow tracking server: checked before Spark starts, and the run pool3 logs into.

MLflow is an optional extra (``pool3[mlflow]``), imported only here and in the modules of this
package. Its own variables apply (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``,
``MLFLOW_RUN_ID``, ``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``...);
the ``[mlflow]`` settings, where non-empty, win over them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from pool3.config import Config
from pool3.errors import ConfigError, OutputError
from pool3.version import __version__

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "pool3"
#: the check before Spark starts asks once and waits at most this long
CHECK_TIMEOUT_S = 10
_USERINFO = re.compile(r"(//)[^/@\s]+@")


def import_mlflow() -> Any:
    """The ``mlflow`` module, or a ConfigError saying how to install it."""
    try:
        import mlflow
    except ImportError as err:
        raise ConfigError(
            f"MLflow tracking (--mlflow, mlflow.enabled) needs MLflow, which is not installed "
            f"({err}): pip install 'pool3[mlflow]' (or 'mlflow>=3,<4')"
        ) from err
    return mlflow


def shown(uri: str) -> str:
    """``uri`` without a ``user:password@`` part, for messages and logs."""
    return _USERINFO.sub(r"\1***@", uri)


def reason(err: BaseException) -> str:
    """The first line of an MLflow/requests error, short enough for one console line."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextlib.contextmanager
def quick_requests(timeout_s: int = CHECK_TIMEOUT_S) -> Iterator[None]:
    """MLflow's HTTP requests without retries and with a short timeout, for a check."""
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect(config: Config) -> str | None:
    """Point MLflow at the configured tracking server and check that it answers; returns its
    URI (for messages, redacted), or None where it does not and ``mlflow.required`` is false
    (then a warning: the run goes on untracked).

    Raises OutputError (exit 4) naming the URI and the fix where it does not answer, and
    ConfigError (exit 2) for an alias without a registered model name: both before any work.
    """
    settings = config.mlflow
    if settings.alias and not settings.registered_model_name:
        raise ConfigError(
            f"mlflow.alias={settings.alias!r} needs mlflow.registered_model_name: an alias "
            "names a version of a registered model"
        )
    mlflow = import_mlflow()
    if settings.tracking_uri:
        mlflow.set_tracking_uri(settings.tracking_uri)
    uri = str(mlflow.get_tracking_uri())
    try:
        with quick_requests():
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # requests, MLflow, sqlalchemy: anything means "not usable"
        message = (
            f"the MLflow tracking server {shown(uri)} cannot be reached ({reason(err)}): start "
            "it, or point MLFLOW_TRACKING_URI (or mlflow.tracking_uri) at a running one; "
            "--set mlflow.required=false runs the command untracked"
        )
        if settings.required:
            raise OutputError(message) from err
        log.warning("%s; mlflow.required = false: this run is not tracked", message)
        return None
    log.info("MLflow tracking at %s", shown(uri))
    return shown(uri)


@contextlib.contextmanager
def tracked_run(config: Config, *, command: str) -> Iterator[Any]:
    """The MLflow run to log into: the caller's active run (a notebook's ``with
    mlflow.start_run()``, left open), ``MLFLOW_RUN_ID``'s run (a scheduler's, continued), or
    a new run in ``mlflow.experiment``. A run pool3 started ends FAILED where the block
    raises, so nothing looks finished that is not."""
    mlflow = import_mlflow()
    settings = config.mlflow
    tags = {"pool3.command": command, "pool3.version": __version__, **dict(settings.tags)}
    active = mlflow.active_run()
    if active is not None:
        mlflow.set_tags(tags)
        yield active
        return
    scheduled = os.environ.get("MLFLOW_RUN_ID") or None
    if scheduled is None:
        name = settings.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or ""
        mlflow.set_experiment(name or DEFAULT_EXPERIMENT)
    else:  # the scheduler's run, in its own experiment (whatever this process set before)
        try:
            experiment = mlflow.MlflowClient().get_run(scheduled).info.experiment_id
        except Exception as err:
            raise ConfigError(
                f"MLFLOW_RUN_ID={scheduled} names no run on the tracking server "
                f"({reason(err)}): unset it, or create the run first"
            ) from err
        mlflow.set_experiment(experiment_id=experiment)
    with mlflow.start_run(run_id=scheduled, run_name=settings.run_name or None, tags=tags) as run:
        yield run
