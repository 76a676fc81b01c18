"""The ``pool3`` command: featurize, train, classify, datasets, export-graph, setup.

Every failure ends with one line on stderr and a non-zero exit code (README, "Exit codes"):
0 success, 1 unexpected error, 2 usage or configuration, 3 input, 4 output, 5 model,
6 quality gate (error rate, accuracy), 7 training data, 8 Spark out of memory (or its JVM
lost, or its Connect server); 130 on Ctrl-C, 143 on SIGTERM (staging removed, lock released).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from pool3.commands.args import build_parser, overrides
from pool3.errors import Pool3Error, as_damaged_input, as_output_error, as_resource_error

log = logging.getLogger("pool3")

__all__ = ["build_parser", "main", "overrides", "run"]


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from pool3.config import load_config

    config = load_config(args.conf, overrides=overrides(args))
    if args.command == "datasets":
        # a driver-side tool, not in the zip shipped to executors
        from pool3_tools.datasets import FASHION_MNIST_ROOT, write_fashion_mnist

        root = args.root or FASHION_MNIST_ROOT
        n = write_fashion_mnist(args.out, split=args.split, per_class=args.per_class, root=root)
        return {"images": n, "out": args.out}
    if args.command == "export-graph":
        from pool3.model import load_bundle
        from pool3.model.cache import load_npz_bytes
        from pool3.model.graphdef import export_graphdef

        bundle = load_bundle("default", home=config.model.home or None)
        path = export_graphdef(load_npz_bytes(bundle.payload), args.output)
        return {"graph": str(path), "input": "DecodeJpeg/contents:0", "output": "pool_3:0"}

    if args.command == "setup":
        from pool3.commands.setup import run_setup

        return run_setup(config, jvm=not args.no_jvm)

    from pool3.commands.run import run_command

    names = ("input", "output", "features", "model", "run_id")
    paths = {k: getattr(args, k) for k in names if hasattr(args, k)}
    return run_command(args.command, config, paths=paths)


def _terminated(command: str) -> NoReturn:
    """SIGTERM (a scheduler cancelling the run): remove the run's staging, release its output
    lock, say so, and end the process with 143. Nothing is raised into the interrupted code:
    an exception in the middle of a py4j call would leave the JVM connection unusable."""
    from pool3.commands.lifecycle import abort_all

    # another thread: py4j gives each its own JVM connection; this one's is mid-call
    cleanup = threading.Thread(target=abort_all, name="pool3-sigterm", daemon=True)
    cleanup.start()
    cleanup.join(timeout=60)
    print(f"pool3 {command}: terminated (SIGTERM); nothing committed", file=sys.stderr)
    _exit(143)


def _exit(code: int) -> NoReturn:
    """End the process now: standard streams and logging flushed, no interpreter teardown."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to say there
            stream.flush()
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Tests inject faults into the Python workers of featurize and classify through
    ``$POOL3_TEST_WORKER_HOOK`` (:mod:`pool3.extraction.hook`, ``tests/apps``), not through
    a parameter.
    """
    from pool3.log import quiet_tensorflow_env, setup_logging

    quiet_tensorflow_env()
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose, log_format=args.log_format)
    on_main = threading.current_thread() is threading.main_thread()
    previous = None
    if on_main:
        previous = signal.signal(signal.SIGTERM, lambda *_: _terminated(args.command))
    try:
        result = _run(args)
    except Pool3Error as err:
        print(f"pool3 {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"pool3 {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the last line of defence: one line, and the traceback in the log
        known = as_output_error(err, getattr(args, "output", None)) or as_resource_error(
            err, f"running pool3 {args.command}"
        )
        if known is not None:
            print(f"pool3 {args.command}: error: {known}", file=sys.stderr)
            return known.exit_code
        if (damaged := as_damaged_input(err, f"running pool3 {args.command}")) is not None:
            print(f"pool3 {args.command}: error: {damaged}", file=sys.stderr)
            return damaged.exit_code
        log.exception("unexpected failure")
        print(
            f"pool3 {args.command}: unexpected error: {type(err).__name__}: {err}", file=sys.stderr
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    from pool3.commands.summary import summary_lines

    print("\n".join(summary_lines(args.command, result, log_format=args.log_format)))
    return 0


def run() -> NoReturn:
    """``pool3``: :func:`main`, :func:`pool3.session.close_gateway`, :func:`_exit`."""
    code = main()
    from pool3.session import close_gateway

    close_gateway()  # not in _exit: a SIGTERM may interrupt a JVM call mid-way
    _exit(code)


if __name__ == "__main__":
    run()
