"""Whole-section checks: every field against its declaration, then the cross-field rules.

:func:`check_section` runs when a section is constructed, so a :class:`TrainParams` built
in code is held to the same rules as one resolved by :func:`pool3.config.load_config`,
and both fail before any JVM starts. Which ``penalty``/``loss``/``dual`` combinations
liblinear accepts is asked of scikit-learn itself (:func:`liblinear_refusal`), not
re-written here.
"""

from __future__ import annotations

import functools
import typing
import warnings
from dataclasses import fields
from typing import Any

from pool3.config.validate import validate_value
from pool3.errors import ConfigError


def check_section(section: Any, *, origin: str, name: str = "train") -> None:
    """Validate and normalise every field of a (frozen) section dataclass in place.

    Raises
    ------
    ConfigError
        A field of the wrong type, outside its choices or bounds, or (for the training
        parameters) a combination the solvers cannot fit.
    """
    hints = typing.get_type_hints(type(section))
    for f in fields(section):
        value = getattr(section, f.name)
        value = validate_value(f"{name}.{f.name}", value, hints[f.name], f.metadata, origin)
        object.__setattr__(section, f.name, value)
    check_train(section)


def check_train(params: Any) -> None:
    """The ``[train]`` rules that involve more than one field.

    - ``n_jobs`` is ``-1`` (all cores) or ``>= 1``;
    - ``solver="newton"`` and ``"spark"`` fit liblinear's default objective only:
      ``loss="squared_hinge"``, ``penalty="l2"``, ``multi_class="ovr"``;
    - ``solver="mllib"`` needs what Spark MLlib fits (``penalty="l2"``,
      ``multi_class="ovr"``) and a number for ``C`` (``"auto"`` cross-validates with the
      Newton solvers and liblinear/SGD);
    - otherwise the combination must be one liblinear accepts (scikit-learn decides);
    - ``multi_class="crammer_singer"`` is one joint liblinear problem: not with SGD or
      ``n_jobs != 1``.
    """
    if params.n_jobs == 0:
        raise ConfigError("invalid train.n_jobs = 0: expected an integer >= 1, or -1 for all cores")
    if params.solver == "mllib" and params.C == "auto":
        raise ConfigError(
            "train.C = 'auto' with train.solver = 'mllib': the cross-validated choice of C "
            "runs with the other solvers (newton or spark for the default objective, "
            "liblinear or sgd); set a number for train.C, or another solver"
        )
    if params.solver in ("newton", "spark"):
        if not params.newton_compatible:
            raise ConfigError(
                f"train.solver = {params.solver!r} with loss={params.loss!r}, penalty="
                f"{params.penalty!r}, multi_class={params.multi_class!r}: the Newton solvers "
                "fit LinearSVC's default objective only; set train.loss = 'squared_hinge', "
                "train.penalty = 'l2', train.multi_class = 'ovr', or solver 'liblinear'"
            )
        return
    if params.solver == "mllib":
        if params.penalty != "l2" or params.multi_class != "ovr":
            raise ConfigError(
                f"train.solver = 'mllib' with penalty={params.penalty!r}, multi_class="
                f"{params.multi_class!r}: Spark MLlib's LinearSVC fits one-vs-rest with an "
                "L2 penalty only; set train.penalty = 'l2' and train.multi_class = 'ovr', "
                "or another solver"
            )
        return
    refusal = liblinear_refusal(params.penalty, params.loss, params.dual, params.multi_class)
    if refusal:
        raise ConfigError(
            f"train.penalty = {params.penalty!r}, train.loss = {params.loss!r}, train.dual = "
            f"{params.dual!r} is refused by scikit-learn's LinearSVC: {refusal}; change one "
            "of them (dual = 'auto' lets scikit-learn pick a valid one)"
        )
    if params.multi_class == "crammer_singer" and (params.solver == "sgd" or params.n_jobs != 1):
        raise ConfigError(
            f"train.multi_class = 'crammer_singer' with solver={params.solver!r}, "
            f"n_jobs={params.n_jobs}: Crammer-Singer is a single joint liblinear problem; use "
            "solver 'liblinear' (or 'auto') and n_jobs = 1, or multi_class = 'ovr'"
        )


#: The tutorial's combination, which liblinear accepts: no need to import scikit-learn.
_KNOWN_GOOD = {("l2", "squared_hinge", "auto", "ovr"), ("l2", "squared_hinge", False, "ovr")}


@functools.lru_cache(maxsize=32)
def liblinear_refusal(penalty: str, loss: str, dual: str | bool, multi_class: str) -> str:
    """scikit-learn's own message refusing this ``LinearSVC`` combination, or ``""``.

    Asks the library by fitting ``LinearSVC`` on four points (a few ms after its import),
    so that pool3 never keeps a copy of liblinear's solver table that could drift.
    """
    if (penalty, loss, dual, multi_class) in _KNOWN_GOOD:
        return ""
    import numpy as np
    from sklearn.svm import LinearSVC

    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    y = np.array([0, 1, 0, 1])
    estimator = LinearSVC(
        penalty=penalty, loss=loss, dual=dual, multi_class=multi_class, max_iter=5
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(X, y)
    except ValueError as err:
        return str(err).strip()
    return ""
