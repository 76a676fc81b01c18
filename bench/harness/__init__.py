"""The benchmark harness: variants (set up, run, stop), the alternated-rounds runner, the
machine's facts, the JSON-lines results and the report drawn from them."""

from bench.harness.core import (
    FuncVariant,
    ProcessVariant,
    Scenario,
    Variant,
    alternate,
    median_of,
)
from bench.harness.machine import calibrate, machine_facts

__all__ = [
    "FuncVariant",
    "ProcessVariant",
    "Scenario",
    "Variant",
    "alternate",
    "calibrate",
    "machine_facts",
    "median_of",
]
