"""The solvers' one interface: :class:`Fitted`, a fitted linear classifier whatever made it.

Every solver (:mod:`pool3.training.solvers`) returns one; :meth:`Fitted.model` turns it into
the persisted :class:`~pool3.training.classifier.LinearModel`, its meta saying what was
fitted on what and how (the :class:`~pool3.training.solvers.choose.Choice` included).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pool3.config import TrainParams
from pool3.training.classifier import LinearModel
from pool3.training.newton.method import NewtonFit
from pool3.training.solvers.choose import Choice
from pool3.training.table.rules import TrainingTable

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Fitted:
    """A fitted linear classifier, whatever solver made it.

    Attributes
    ----------
    coef : ndarray of shape (n_rows, n_features)
        One row per class, or one row scoring ``classes[1]`` for two classes.
    intercept : ndarray of shape (n_rows,)
    classes : tuple of str
    estimator : str
        What ran, e.g. ``"newton (float32, driver)"``, for the log, meta and report.
    n_iter : int or None
        Largest iteration count over the classes (Newton steps, liblinear iterations).
    converged : bool or None
    seconds : float
    passes : int or None
        Sweeps over the training rows (Newton solvers).
    raw : object
        The library's own fitted object, or the Newton weights (for warm starts).
    extra : dict
        Solver-specific, JSON-ready details merged into the model's meta.
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: tuple[str, ...]
    estimator: str
    n_iter: int | None
    converged: bool | None
    seconds: float
    passes: int | None = None
    raw: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(n, n_classes) float64 scores, column ``j`` for ``classes[j]``."""
        coef = np.asarray(self.coef, dtype=np.float64).T
        s = np.empty((len(X), coef.shape[1]))
        for start in range(0, len(X), 8192):  # row blocks: no float64 copy of all of X
            s[start : start + 8192] = np.asarray(X[start : start + 8192], dtype=np.float64) @ coef
        s += self.intercept
        return np.hstack([-s, s]) if s.shape[1] == 1 else s

    @classmethod
    def from_newton(
        cls,
        fit: NewtonFit,
        classes: Sequence[str],
        *,
        estimator: str,
        max_iter: int,
        quiet: bool = False,
        **extra: Any,
    ) -> Fitted:
        """A :func:`pool3.training.newton.method.fit_newton` result for ``classes`` (one weight
        column each; for two classes only ``classes[1]``'s, as scikit-learn keeps it);
        warns unless ``quiet`` when it stopped before liblinear's stopping rule."""
        if not fit.converged and not quiet:
            log.warning(
                "%s stopped before liblinear's stopping rule (worst |g| is %.3g x the "
                "target; max_iter=%d, or no step size lowered the objective further): "
                "raise train.max_iter or lower train.C",
                estimator,
                float(fit.grad_ratio.max()),
                max_iter,
            )
        pick = [1] if len(classes) == 2 else list(range(len(classes)))
        return cls(
            coef=fit.W[:-1, pick].T.astype(np.float32),
            intercept=fit.W[-1, pick].astype(np.float32),
            classes=tuple(str(c) for c in classes),
            estimator=estimator,
            n_iter=fit.newton_iters,
            converged=fit.converged,
            seconds=fit.seconds,
            passes=fit.passes,
            raw=fit,
            extra={"cg_iters": fit.cg_iters, "newton": fit.stats(), **extra},
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[np.argmax(self.scores(X), axis=1)]

    def model(self, data: TrainingTable, params: TrainParams, choice: Choice) -> LinearModel:
        """The classifier pool3 saves, its meta saying what was fitted on what, and how."""
        meta = {
            "counts": dict(data.counts),
            "feature_precision": data.precision,
            "n_train": data.n_train,
            "n_test": data.n_test,
            "n_features": int(self.coef.shape[1]),
            "split": dict(data.split),
            "params": asdict(params),
            "solver_choice": {"solver": choice.name, "why": choice.why},
            **self.meta(),
        }
        return LinearModel(self.coef, self.intercept, self.classes, data.fingerprint, meta)

    def meta(self) -> dict[str, Any]:
        """What the model's ``classifier.json`` records about the fit."""
        return {
            "estimator": self.estimator,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "fit_seconds": round(self.seconds, 3),
            **({"passes": self.passes} if self.passes is not None else {}),
            **self.extra,
        }
