"""Validated training parameters: the tutorial's split and ``LinearSVC`` settings by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pool3.errors import ConfigError

_CHOICES: dict[str, tuple[Any, ...]] = {
    "loss": ("hinge", "squared_hinge"),
    "penalty": ("l1", "l2"),
    "multi_class": ("ovr", "crammer_singer"),
    "dual": ("auto", True, False),
    "solver": ("liblinear", "sgd", "spark", "auto"),
    "dtype": ("float32", "float64"),
}


@dataclass(frozen=True)
class TrainParams:
    """How to split and fit. Defaults are the tutorial's (80/20, seed 42, LinearSVC defaults)
    except ``stratify=True``; ``stratify=False`` is the tutorial's plain split.

    ``solver="spark"`` fits Spark MLlib's ``LinearSVC`` (one-vs-rest) on the cluster
    (:mod:`pool3.train_spark`). It needs ``penalty="l2"`` and ``multi_class="ovr"``.
    MLlib minimises the plain hinge loss whatever ``loss`` says: ``loss`` (like ``dual``,
    ``n_jobs`` and ``dtype``) applies to the scikit-learn solvers only, and the Spark path
    logs which loss it fits when ``loss`` is not ``"hinge"``. ``loss`` is accepted rather
    than refused so that ``solver="auto"`` can fall back to Spark with the default config.
    """

    test_size: float = 0.2
    seed: int = 42
    stratify: bool = True
    C: float = 1.0
    loss: str = "squared_hinge"
    penalty: str = "l2"
    multi_class: str = "ovr"
    dual: str | bool = "auto"
    max_iter: int = 1000
    tol: float = 1e-4
    solver: str = "auto"
    n_jobs: int = 1
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            # `True in ("auto", 1)` would be True for 1: compare types as well.
            if not any(value == a and type(value) is type(a) for a in allowed):
                raise ConfigError(f"{name}={value!r} is not valid; allowed: {list(allowed)}.")
        self._check_numbers()
        self._check_combination()

    def _check_numbers(self) -> None:
        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r} is not valid; expected {rule}.")

        for name in ("test_size", "C", "tol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(name, "a number")
        if not 0.0 < self.test_size < 1.0:
            raise bad("test_size", "a fraction strictly between 0 and 1, e.g. 0.2")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", "an integer >= 0")
        if not self.C > 0:
            raise bad("C", "a number > 0 (1.0 is the tutorial's)")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, int)
            or self.max_iter < 1
        ):
            raise bad("max_iter", "an integer >= 1")
        if not self.tol > 0:
            raise bad("tol", "a number > 0, e.g. 1e-4")
        if (
            isinstance(self.n_jobs, bool)
            or not isinstance(self.n_jobs, int)
            or not (self.n_jobs >= 1 or self.n_jobs == -1)
        ):
            raise bad("n_jobs", "an integer >= 1, or -1 for all cores")

    @property
    def spark_compatible(self) -> bool:
        """Whether Spark MLlib can fit these settings (``solver="auto"`` may fall back to it)."""
        return self.penalty == "l2" and self.multi_class == "ovr"

    def _check_combination(self) -> None:
        if self.solver == "spark":
            if not self.spark_compatible:
                raise ConfigError(
                    f"solver='spark' with penalty={self.penalty!r}, multi_class="
                    f"{self.multi_class!r}: Spark MLlib's LinearSVC fits one-vs-rest with an "
                    "L2 penalty only; use penalty='l2' and multi_class='ovr', or another solver."
                )
            return  # dual / loss combinations are liblinear's rules
        combo = f"penalty={self.penalty!r}, loss={self.loss!r}, dual={self.dual!r}"
        if self.penalty == "l1" and self.loss == "hinge":
            raise ConfigError(f"{combo} is not supported by liblinear; use loss='squared_hinge'.")
        if self.penalty == "l1" and self.dual is True:
            raise ConfigError(f"{combo}: penalty='l1' needs dual=False (or 'auto').")
        if self.penalty == "l2" and self.loss == "hinge" and self.dual is False:
            raise ConfigError(f"{combo}: loss='hinge' needs dual=True (or 'auto').")
        if self.multi_class == "crammer_singer" and (self.solver == "sgd" or self.n_jobs != 1):
            raise ConfigError(
                f"multi_class='crammer_singer' with solver={self.solver!r}, n_jobs={self.n_jobs}: "
                "Crammer-Singer is a single joint liblinear problem; use solver='liblinear' "
                "(or 'auto') and n_jobs=1, or multi_class='ovr'."
            )
