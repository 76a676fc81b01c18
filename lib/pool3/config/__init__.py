"""Configuration: one frozen, validated dataclass per config section, and how it is resolved.

Owns the schema of every setting (:mod:`.sections`: fields with their choices and bounds,
declared once and read by the CLI, the validation and the code), where values come from
(:mod:`.sources`: profiles, local overrides, env, CLI), the per-value checks
(:mod:`.validate`) and the resolution with its cross-field rules (:mod:`.load`). The
committed profiles are package data (``profiles/*.toml``).

May import: :mod:`pool3.errors` and the standard library (scikit-learn, lazily, to ask
liblinear's rules). Imported by every other package; it imports none of them.
"""

from pool3.config.load import load_config
from pool3.config.sections import (
    ClassifyConfig,
    Config,
    FeaturizeConfig,
    MlflowConfig,
    ModelConfig,
    OutputConfig,
    ReportConfig,
    SparkConfig,
    TrainConfig,
    TrainParams,
    choices_of,
)

__all__ = [
    "ClassifyConfig",
    "Config",
    "FeaturizeConfig",
    "MlflowConfig",
    "ModelConfig",
    "OutputConfig",
    "ReportConfig",
    "SparkConfig",
    "TrainConfig",
    "TrainParams",
    "choices_of",
    "load_config",
]
