"""``python -m bench list | run SCENARIO [options] | report``: the one entry point."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.harness import results
from bench.harness.core import Scenario
from bench.harness.machine import calibrate, commit, describe, machine_facts

SCENARIOS = (
    "featurize", "spark", "startup", "train", "duplicates", "connect", "read", "prefetch",
    "precision", "resize",
)  # fmt: skip


def scenario(name: str) -> Scenario:
    return importlib.import_module(f"bench.scenarios.{name}").SCENARIO


def _typed(default: Any) -> Any:
    if isinstance(default, bool):
        return lambda s: s.lower() in ("1", "true", "yes", "on")
    return type(default) if default is not None else str


def run(name: str, argv: list[str]) -> dict[str, Any]:
    sc = scenario(name)
    p = argparse.ArgumentParser(
        prog=f"python -m bench run {name}",
        description=sc.doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=sc.options.get("rounds", 2))
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 round")
    p.add_argument("--no-write", action="store_true", help="print, do not record")
    p.add_argument("--write", action="store_true", help="record a --quick run too")
    p.add_argument("--results", type=Path, default=results.RESULTS_JSONL)
    for key, default in sc.options.items():
        if key != "rounds":
            p.add_argument(f"--{key.replace('_', '-')}", type=_typed(default), default=default)
    args = p.parse_args(argv)
    given = {a.lstrip("-").split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    if args.quick:  # the smoke run's sizes, unless given on the command line
        for key, value in sc.quick.items():
            if key not in given:
                setattr(args, key, value)
    opts = SimpleNamespace(**{k: v for k, v in vars(args).items() if k not in ("results",)})
    facts = machine_facts()
    print(f"{name}: {describe(facts)}, commit {commit()}", flush=True)
    windows = 1 if args.quick else 5
    before = calibrate(windows=windows)
    figures, records, notes = sc.run(opts)
    after = calibrate(windows=windows)
    line = {
        "time": results.now(), "scenario": name, "quick": args.quick, "commit": commit(),
        "command": shlex.join(["python", "-m", "bench", "run", name, *argv]),
        "options": {k: v for k, v in vars(opts).items() if k not in ("no_write", "write")},
        "machine": facts, "calibration": {"before": before, "after": after},
        "figures": figures, "records": records, "notes": notes,
    }  # fmt: skip
    print(results.scenario_section(line), flush=True)
    if not args.no_write and (args.write or not args.quick):
        results.append(line, args.results)
        print(f"recorded in {args.results}; regenerate RESULTS.md: python -m bench report")
    return line


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in ("list", "run", "report"):
        print(__doc__)
        return
    if argv[0] == "list":
        for name in SCENARIOS:
            print(f"{name:11} {scenario(name).doc.splitlines()[0]}")
    elif argv[0] == "report":
        jsonl = Path(argv[1]) if len(argv) > 1 else results.RESULTS_JSONL
        results.report(jsonl)
        print(f"wrote {results.RESULTS_MD}")
    elif len(argv) < 2 or argv[1] not in SCENARIOS:
        sys.exit(f"python -m bench run SCENARIO: one of {', '.join(SCENARIOS)}")
    else:
        run(argv[1], argv[2:])


if __name__ == "__main__":
    main()
