"""The commands the documentation shows are commands pool3 accepts.

Every ``pool3 ...`` line, every ``spark-submit.sh ... -- <subcommand> ...`` line and every
``jobs/pool3_job.py <subcommand> ...`` line in the shell blocks of README.md, docs/ and
conf/README.md is parsed by the real argument parser (``pool3.cli.build_parser``): a flag
that does not exist (``train --model``) or a missing required one fails here, not in a
user's scheduler.
"""

from __future__ import annotations

import re
import shlex

import pytest

from paths import REPO
from pool3.cli import build_parser

DOCS = [REPO / "README.md", REPO / "conf" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SUBCOMMANDS = {"featurize", "train", "classify", "datasets", "export-graph"}


def shell_lines(text: str) -> list[str]:
    """The logical lines of the fenced shell blocks, continuations joined, comments cut."""
    found: list[str] = []
    block: list[str] | None = None  # lines of the open fenced block; None outside any
    shell = False
    for line in text.splitlines():
        if line.startswith("```"):
            if block is None:
                block, shell = [], line.strip("`").strip() in ("", "bash", "sh")
                continue
            if shell:
                joined = "\n".join(block).replace("\\\n", " ")
                found += [re.sub(r"\s#.*$", "", x).strip() for x in joined.splitlines()]
            block = None
        elif block is not None:
            block.append(line)
    return [x for x in found if x]


def pool3_args(line: str) -> list[str] | None:
    """The pool3 arguments of a shell line, or None if it does not run pool3."""
    if not re.search(r"^pool3 |pool3_job\.py|spark-submit\.sh|\$S ", line):
        return None  # prose in an unlabelled block, e.g. the architecture tree
    words = shlex.split(line)
    if words and words[0] == "pool3":
        return words[1:]
    for i, word in enumerate(words):
        if word.endswith("pool3_job.py"):
            return words[i + 1 :]
    if "--" in words and any(w.endswith("spark-submit.sh") or w == "$S" for w in words):
        return words[words.index("--") + 1 :]
    return None


def documented_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for doc in DOCS:
        for line in shell_lines(doc.read_text(encoding="utf-8")):
            args = pool3_args(line)
            if args and args[0] in SUBCOMMANDS:
                commands.append((f"{doc.relative_to(REPO)}: {line}", args))
    return commands


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_every_kind() -> None:
    shown = {args[0] for _, args in COMMANDS}
    assert shown >= {"featurize", "train", "classify"}, shown
    assert any("hdfs://" in " ".join(a) for _, a in COMMANDS if a[0] == "train")
    assert any("s3a://" in " ".join(a) for _, a in COMMANDS if a[0] == "classify")


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[w[:80] for w, _ in COMMANDS])
def test_documented_command_parses(where: str, args: list[str]) -> None:
    try:
        build_parser().parse_args(args)
    except SystemExit as err:
        pytest.fail(f"{where}\nis refused by pool3's argument parser (exit {err.code})")


def test_the_python_calls_the_docs_show_are_pool3s_names() -> None:
    """``pool3.NAME(...)`` in the docs and docstrings names a public function or class
    (the package docstring once showed ``pool3.extraction(images)``)."""
    import pool3

    texts = [*DOCS, *(REPO / "lib" / "pool3").rglob("*.py"), *(REPO / "examples").glob("*.py")]
    called = {
        (name, str(path.relative_to(REPO)))
        for path in texts
        for name in re.findall(r"(?<![\w.])pool3\.(\w+)\(", path.read_text(encoding="utf-8"))
    }
    assert {name for name, _ in called} >= {"featurize", "train"}
    assert not [c for c in called if c[0] not in pool3.__all__], sorted(called)
