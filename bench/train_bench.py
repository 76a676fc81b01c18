"""Classifier fit time and accuracy: scikit-learn's defaults vs pool3's solver choices.

    python bench/train_bench.py [--sizes 10000,60000] [--classes 10,48] [--features F.parquet]
    python bench/train_bench.py --tablegen out/fm/features --sizes 2000,5000,20000 --classes 48 \
        --variants primal-f32,newton

Synthetic features (timing): ``n`` training + ``n // 5`` test rows of 2048 float32 drawn as
Gaussian blobs, one per class: centres ~ N(0, s^2 I) with ``s = separation / sqrt(2 * 2048)``
(so two centres are ``separation`` noise-sigmas apart) plus unit noise, then mapped like
pool_3 features, ``max(0, 0.2 + 0.3 x)``: non-negative, mean ~0.27, ~25 % zeros (the golden
features of tests/data/golden: mean 0.28, 25 % below 0.05). Same seed, same data for every
variant.

pool_3-like tables (``--tablegen FEATURES``): ``n + n // 5`` rows of
``bench/tablegen.py`` (class means and real within-class residuals of a pool3 feature
table, ``--spread``), the last fifth the test set.

Real features (accuracy): each ``--features`` Parquet written by ``pool3 featurize`` (e.g.
Fashion-MNIST) is read, sorted by path, prepared and split as ``pool3 train`` does (80/20,
stratified, seed 42); every variant fits the same split. Give a float32 and a bfloat16
Parquet of the same images to compare their accuracy.

Each fit runs in a fresh process with a time limit (``--timeout``), one at a time, variants
in rotating order; fit time excludes data generation/loading.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import queue
import time
from typing import Any

import numpy as np

from common import append_results, calibrate, load1, md_table

VARIANTS = {
    "sk-default": "LinearSVC() (dual='auto'), float64: scikit-learn default",
    "sk-dual": "LinearSVC(dual=True), float64: tutorial-era default",
    "pool3-default": "pool3 TrainParams() (solver/dual 'auto', float32, n_jobs=1)",
    "primal-f32": "pool3 liblinear dual=False, float32, n_jobs=1 (= pool3-default when n > d)",
    "primal-f32-j2": "pool3 liblinear dual=False, float32, n_jobs=2 (classes in parallel)",
    "sgd-j2": "pool3 SGD (hinge-type loss), float32, n_jobs=2",
    "newton": "pool3 newton: float32 Newton of liblinear's objective, all classes per pass",
}

DEFAULT_VARIANTS = "sk-default,sk-dual,pool3-default,primal-f32-j2,sgd-j2"


def blobs(
    n: int, k: int, *, separation: float, seed: int, d: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, d) float32, y (n,) str) Gaussian blobs; see the module docstring."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d), dtype=np.float32) * np.float32(
        separation / np.sqrt(2 * d)
    )
    y = rng.integers(0, k, n)
    X = centres[y] + rng.standard_normal((n, d), dtype=np.float32)
    # pool_3-like: non-negative, mean ~0.27, ~25 % zeros, norm ~15-20 (tests/data/golden features:
    # mean 0.28, 25 % below 0.05, norm 17-21).
    X = np.maximum(np.float32(0.2) + np.float32(0.3) * X, np.float32(0))
    return X, np.array([f"c{v:02d}" for v in y])


def _data(spec: dict[str, Any]) -> tuple[np.ndarray, ...]:
    if spec["kind"] == "synthetic":
        n, k = spec["n"], spec["k"]
        X, y = blobs(n + n // 5, k, separation=spec["separation"], seed=spec["seed"])
        return X[:n], y[:n], X[n:], y[n:]
    if spec["kind"] == "tablegen":
        from tablegen import TableGen, real_parts

        n, k = spec["n"], spec["k"]
        means, residuals = real_parts(spec["path"])
        gen = TableGen(means, residuals, classes=k, spread=spec["spread"], seed=spec["seed"])
        X, yi = gen.arrays(n + n // 5)
        y = np.array([f"c{v:02d}" for v in yi])
        return X[:n], y[:n], X[n:], y[n:]
    import pandas as pd
    from sklearn.model_selection import train_test_split

    # A solver benchmark, not a test of pool3's rules: the usable rows of a real feature
    # table, the tutorial's stratified split (seed 42) over the rows sorted by path.
    df = pd.read_parquet(spec["path"], columns=["path", "label", "features", "error"])
    df = df[df["error"].isna() & df["label"].notna()].sort_values("path", kind="stable")
    X = np.stack(df["features"].to_numpy()).astype(np.float32)
    y = df["label"].to_numpy(dtype=str)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=42, stratify=y
    )
    return X_train, y_train, X_test, y_test


def _estimator(variant: str, X: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.svm import LinearSVC

    if variant == "sk-default":
        return LinearSVC().fit(X.astype(np.float64), y)
    if variant == "sk-dual":
        return LinearSVC(dual=True).fit(X.astype(np.float64), y)
    from pool3.config import TrainParams
    from pool3.training.solvers.sklearn_solver import fit_linear_svc

    if variant == "newton":
        from pool3.training.solvers.driver import fit_newton_arrays

        return fit_newton_arrays(np.ascontiguousarray(X), y, TrainParams(solver="newton"))

    params = {
        "pool3-default": TrainParams(),
        "primal-f32": TrainParams(solver="liblinear", dual=False, n_jobs=1),
        "primal-f32-j2": TrainParams(solver="liblinear", dual=False, n_jobs=2),
        "sgd-j2": TrainParams(solver="sgd", n_jobs=2),
    }[variant]
    return fit_linear_svc(X, y, params)


def _child(spec: dict[str, Any], variant: str, out: Any) -> None:
    X, y, Xt, yt = _data(spec)
    out.put("ready")
    start = time.perf_counter()
    est = _estimator(variant, X, y)
    fit_s = time.perf_counter() - start
    pred = est.predict(Xt.astype(np.float64) if variant.startswith("sk-") else Xt)
    n_iter = getattr(est, "n_iter_", None) or getattr(est, "n_iter", None)
    if n_iter is None and hasattr(est, "estimators_"):
        n_iter = max(int(np.max(e.n_iter_)) for e in est.estimators_)
    out.put(
        {
            "fit_s": fit_s,
            "acc": float(np.mean(pred == yt)),
            "n_iter": int(np.max(n_iter or 0)),
            "passes": getattr(est, "passes", None),
            "pred": pred,
        }
    )


def _kill_tree(root: int) -> None:
    """SIGKILL ``root`` and its descendants (joblib workers of a stopped fit), by pid."""
    import os
    import signal

    from procmem import children

    kids, pids, stack = children(), [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack += kids.get(pid, [])
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def fit_once(spec: dict[str, Any], variant: str, timeout: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # Not a daemon: OneVsRestClassifier(n_jobs=2) starts joblib worker processes.
    proc = ctx.Process(target=_child, args=(spec, variant, out), daemon=False)
    proc.start()
    try:
        if out.get(timeout=600) != "ready":  # data generated or loaded; the clock starts
            raise RuntimeError("train_bench child: unexpected message")
        load0 = load1()
        result = out.get(timeout=timeout + 5)
    except queue.Empty:
        load0 = load1()
        result = {"fit_s": None, "acc": None, "n_iter": None, "pred": None, "passes": None}
    finally:
        if proc.pid is not None:
            _kill_tree(proc.pid)
        proc.join()
    result["load"] = (load0 + load1()) / 2
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,60000", help="training rows (test: +20%%)")
    p.add_argument("--classes", default="10,48")
    p.add_argument("--separation", type=float, default=6.0, help="blob centre distance / sigma")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"subset of {list(VARIANTS)}")
    p.add_argument("--dual-max", type=int, default=10000, help="sk-dual only up to this many rows")
    p.add_argument(
        "--features", action="append", default=[], help="real feature Parquet (repeatable)"
    )
    p.add_argument(
        "--tablegen", default=None, help="a pool3 feature table: pool_3-like tables from it"
    )
    p.add_argument("--spread", type=float, default=1.5, help="--tablegen residual scale")
    p.add_argument("--timeout", type=float, default=180, help="seconds per fit before giving up")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 3000 rows, 10 classes, 30 s limit"
    )
    p.add_argument("--no-write", action="store_true", help="print, do not append to RESULTS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.classes, args.timeout = "3000", "10", 30
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.classes = [int(s) for s in args.classes.split(",") if s]
    args.variants = [v for v in args.variants.split(",") if v]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    before = calibrate()
    if args.tablegen:
        specs = [
            (
                f"tablegen {n} x 2048, {k} classes, spread {args.spread}",
                {
                    "kind": "tablegen",
                    "path": args.tablegen,
                    "n": n,
                    "k": k,
                    "spread": args.spread,
                    "seed": 0,
                },
            )
            for n in args.sizes
            for k in args.classes
        ]
    else:
        specs = [
            (
                f"synthetic {n} x 2048, {k} classes",
                {"kind": "synthetic", "n": n, "k": k, "separation": args.separation, "seed": 0},
            )
            for n in args.sizes
            for k in args.classes
        ]
    specs += [(f"real: {path}", {"kind": "parquet", "path": path}) for path in args.features]
    rows, preds = [], {}
    timed_out: dict[str, tuple[int, int]] = {}  # variant -> (n, k) where it ran out of time

    def skip(v: str, spec: dict[str, Any]) -> bool:
        if v == "sk-dual" and spec.get("n", 0) > args.dual_max:
            return True
        n0, k0 = timed_out.get(v, (1 << 62, 1 << 62))
        return spec["kind"] != "parquet" and spec["n"] >= n0 and spec["k"] >= k0

    for i, (name, spec) in enumerate(specs):
        variants = [v for v in args.variants if not skip(v, spec)]
        shift = i % len(variants)
        results = {}
        for v in variants[shift:] + variants[:shift]:
            print(f"{name}: {v} ...", flush=True)
            results[v] = r = fit_once(spec, v, args.timeout)
            if r["fit_s"] is None and spec["kind"] != "parquet":
                timed_out[v] = (spec["n"], spec["k"])
            print(f"  fit {r['fit_s']} s, accuracy {r['acc']}", flush=True)
        refs = ("sk-default", "sk-dual", "primal-f32")
        ref = next((v for v in refs if results.get(v, {}).get("acc")), None)
        base = results[ref]["acc"] if ref else None
        for v in variants:
            r = results[v]
            fit = f"> {args.timeout:.0f} (stopped)" if r["fit_s"] is None else round(r["fit_s"], 1)
            acc = "-" if r["acc"] is None else f"{100 * r['acc']:.2f}"
            delta = "-" if r["acc"] is None or base is None else f"{100 * (r['acc'] - base):+.2f}"
            iters = "-" if r["n_iter"] is None else r["n_iter"]
            if r.get("passes"):
                iters = f"{iters} ({r['passes']} passes)"
            tag = " (reference)" if v == ref else ""
            rows.append([name, VARIANTS[v] + tag, fit, acc, delta, iters, round(r["load"], 2)])
        preds[name] = {v: r["pred"] for v, r in results.items()}
    after = calibrate()
    notes = [
        f"Synthetic blobs: separation {args.separation} sigma between centres, test set = "
        "n/5 more rows of the same blobs. sk-dual is skipped above "
        f"{args.dual_max} rows. Each fit in a fresh process, limit {args.timeout:.0f} s; a "
        "variant stopped at the limit is not run on larger data (n and classes >=).",
        "'vs reference' = accuracy minus that of scikit-learn's LinearSVC() on the same split, "
        "or of LinearSVC(dual=True) where the default did not finish (same objective).",
    ]
    real = [name for name in preds if name.startswith("real: ")]
    if len(real) >= 2:
        first = preds[real[0]]
        for other in real[1:]:
            for v, p in preds[other].items():
                if p is not None and first.get(v) is not None and len(p) == len(first[v]):
                    differ = np.mean(p != first[v])
                    notes.append(
                        f"{v}: {differ:.2%} of test predictions differ between "
                        f"{real[0][6:]} and {other[6:]}"
                    )
    header = [
        "data",
        "variant",
        "fit s",
        "accuracy %",
        "vs reference (points)",
        "iterations",
        "load",
    ]
    append_results(
        f"Training{' (quick)' if args.quick else ''}",
        before=before,
        after=after,
        sections=[("Fit time and accuracy", md_table(header, rows))],
        notes=notes,
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
