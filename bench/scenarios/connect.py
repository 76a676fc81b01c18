"""``pool3 featurize`` on Spark Classic against the same run over Spark Connect.

Variants, alternated ``rounds`` times on the same ``n`` JPEGs, each a fresh ``pool3
featurize --conf local`` process with default settings: ``classic`` (this checkout on
Spark Classic), ``connect`` (``--remote`` to a local Spark Connect server, ``local[2]``,
started from the installed pyspark by ``tests/connect.py``; warm), and ``base`` when
``base_lib`` names another checkout's ``lib`` (first on ``PYTHONPATH``; e.g. a git worktree
of 20d168a, the revision before Spark Connect support). Figures per variant: ``wall_s``,
``e2e_ips``, ``phase_ips`` and ``ship_s`` (the "model shipped" log line: the model file as
a session artifact).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness.core import Figures, FuncVariant, Scenario, alternate, medians
from bench.harness.images import write_jpegs
from bench.harness.procs import featurize_figures, pool3

REPO = Path(__file__).resolve().parents[2]


def run(o: Any) -> tuple[Figures, list[Figures], list[str]]:
    sys.path.insert(0, str(REPO / "tests"))
    from connect import start_connect_server

    with tempfile.TemporaryDirectory(prefix="pool3-bench-") as tmp:
        work = Path(tmp)
        write_jpegs(work / "images", o.n)
        server = start_connect_server(work / "server")

        def variant(name: str) -> FuncVariant:
            env = {"PYSPARK_PYTHON": sys.executable}
            if name == "base":
                env["PYTHONPATH"] = os.pathsep.join([o.base_lib, os.environ.get("PYTHONPATH", "")])
            remote = ["--remote", server.url] if name == "connect" else []

            def go(_: Any) -> Figures:
                args = ["featurize", "--conf", "local", "--input", str(work / "images"), "--output"]
                args += [str(work / "out"), "--mode", "overwrite", "--log-format", "json", *remote]
                out = pool3(args, log=work / "log", env=env)
                shipped = re.search(
                    r"model shipped as \S+ \(\S+ MB\) in ([\d.]+) s", (work / "log").read_text()
                )
                shutil.rmtree(work / "out", ignore_errors=True)
                return featurize_figures(out) | (
                    {"ship_s": float(shipped.group(1))} if shipped else {}
                )

            return FuncVariant(name, go)

        names = ["base"] * bool(o.base_lib) + ["classic", "connect"]
        try:
            records = alternate([variant(n) for n in names], rounds=o.rounds)
        finally:
            server.stop()
    figures = medians(records, by=("variant",))
    figures["connect_over_classic"] = figures["classic/wall_s"] / figures["connect/wall_s"]
    return figures, records, [f"{o.n} JPEGs; connect: a warm local server (local[2])"]


SCENARIO = Scenario(
    name="connect",
    doc=__doc__ or "",
    run=run,
    options={"n": 800, "base_lib": "", "rounds": 3},
    quick={"n": 8, "rounds": 1},
)
