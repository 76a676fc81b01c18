"""Variants, the alternated-rounds runner and the scenario definition.

A **variant** is one way of doing the measured work: ``setup()`` once (outside the timing),
``run(item)`` per measurement (returns its figures: seconds, images/s, ...), ``stop()``.
:class:`ProcessVariant` runs a variant in a process of its own (one per variant, so
process-wide settings such as TensorFlow's threads cannot leak from one to another), driven
through a pipe; only one variant computes at a time.

:func:`alternate` is the one runner: ``warmup`` rounds that are not recorded, then
``rounds`` rounds; in each, every item (a chunk of images, a size) runs under every variant,
the order rotated at each step (A B C, B C A, ...), because the machines drift. A record per
(round, item, variant) keeps the figures and the 1-minute load; :func:`median_of` and
:func:`medians` reduce them.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

Figures = dict[str, Any]


class Variant(Protocol):
    name: str

    def setup(self) -> None: ...

    def run(self, item: Any) -> Figures: ...

    def stop(self) -> None: ...


@dataclass
class FuncVariant:
    """A variant made of plain functions (in this process)."""

    name: str
    fn: Callable[[Any], Figures]
    on_setup: Callable[[], None] | None = None
    on_stop: Callable[[], None] | None = None

    def setup(self) -> None:
        if self.on_setup:
            self.on_setup()

    def run(self, item: Any) -> Figures:
        return self.fn(item)

    def stop(self) -> None:
        if self.on_stop:
            self.on_stop()


def _serve(conn: Connection, factory: str, kwargs: dict[str, Any]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        module, _, name = factory.partition(":")
        fn = getattr(importlib.import_module(module), name)(**kwargs)
        conn.send(("ready", None))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        tag, item = conn.recv()
        if tag == "stop":
            return
        try:
            conn.send(("done", fn(item)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


@dataclass
class ProcessVariant:
    """A variant served by a spawned process: ``factory`` (``"module:function"``) is called
    there with ``kwargs`` and returns the function that does one measurement."""

    name: str
    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    _conn: Connection | None = None
    _proc: Any = None

    def setup(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.factory, self.kwargs))
        self._proc.daemon = True
        self._proc.start()
        self._answer()

    def _answer(self) -> Any:
        assert self._conn is not None
        tag, value = self._conn.recv()
        if tag == "error":
            raise RuntimeError(f"variant {self.name} failed:\n{value}")
        return value

    def send(self, item: Any) -> None:
        """Start one measurement (several variants can compute at once); see :meth:`answer`."""
        assert self._conn is not None, "setup() first"
        self._conn.send(("run", item))

    def answer(self) -> Any:
        return self._answer()

    def run(self, item: Any) -> Figures:
        self.send(item)
        return self._answer()

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.send(("stop", None))
            self._proc.join(timeout=30)
            self._conn = None


def load1() -> float:
    """1-minute load average (other processes compete for the cores when it is high)."""
    return os.getloadavg()[0]


def alternate(
    variants: Sequence[Variant],
    *,
    rounds: int,
    warmup: int = 0,
    items: Sequence[Any] = (None,),
    label: Callable[[Any], Any] = lambda item: item,
) -> list[Figures]:
    """Run every item under every variant, rotating the order at each step; records of the
    ``rounds`` after ``warmup``: ``round``, ``item`` (``label(item)``), ``variant``, the
    variant's figures, ``seconds`` (the call's wall unless the variant gave it) and ``load``."""
    records: list[Figures] = []
    step = 0
    for r in range(warmup + rounds):
        for item in items:
            shift = step % len(variants)
            step += 1
            for v in [*variants[shift:], *variants[:shift]]:
                start = time.perf_counter()
                figures = dict(v.run(item) or {})
                figures.setdefault("seconds", time.perf_counter() - start)
                if r >= warmup:
                    records.append(
                        {"round": r - warmup + 1, "item": label(item), "variant": v.name}
                        | figures
                        | {"load": load1()}
                    )
        if r >= warmup:
            print(f"  round {r - warmup + 1}/{rounds} done, load {load1():.1f}", flush=True)
    return records


def median_of(records: Sequence[Figures], key: str, **where: Any) -> float | None:
    """The median of ``key`` over the records matching ``where`` (None if none has it)."""
    found = [
        r[key]
        for r in records
        if all(r.get(k) == v for k, v in where.items()) and isinstance(r.get(key), int | float)
    ]
    return statistics.median(found) if found else None


def medians(records: Sequence[Figures], by: Sequence[str] = ("item", "variant")) -> Figures:
    """Flat figures ``"item/variant/key": median`` over the rounds (None parts left out)."""
    groups: dict[tuple[Any, ...], list[Figures]] = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out: Figures = {}
    for group, rows in groups.items():
        keys = {k for r in rows for k in r if k not in (*by, "round")}
        prefix = "/".join(str(g) for g in group if g is not None)
        for k in sorted(keys):
            m = median_of(rows, k)
            if m is not None:
                out[f"{prefix}/{k}" if prefix else k] = m
    return out


@dataclass(frozen=True)
class Scenario:
    """One benchmark: ``options`` (defaults; ``--name value`` on the command line),
    ``quick`` (the smoke run's overrides), and ``run(options) -> (figures, records, notes)``."""

    name: str
    doc: str
    run: Callable[[Any], tuple[Figures, list[Figures], list[str]]]
    options: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
