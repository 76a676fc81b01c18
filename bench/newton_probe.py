"""Probe: a dense float32 primal Newton-CG linear SVM against liblinear (not used by pool3).

    python bench/newton_probe.py [--n 10000] [--classes 10] [--tols 1e-2,1e-3,1e-4,1e-5,1e-6]

Asks whether liblinear's float64 copy and sparse node layout are what make training slow:
the same objective as ``LinearSVC(dual=False)`` (squared hinge, L2, penalised bias with
intercept scaling 1), solved by truncated Newton with conjugate gradients, every class at
once through float32 GEMMs, stopped when each class's gradient norm falls below
``tol x`` its initial value. Data: train_bench's synthetic pool_3-like blobs. Prints fit
time, test accuracy, outer / CG iterations per tolerance, then liblinear's time, accuracy
and agreement with the tightest run. Nothing is appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import load1
from train_bench import blobs


def _col_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", a, b)


def fit(X: np.ndarray, y: np.ndarray, *, C: float = 1.0, tol: float) -> tuple[np.ndarray, ...]:
    """(W (d, k), b (k,), classes, Newton steps tried, CG iterations) one-vs-rest."""
    classes = np.unique(y)
    Y = np.where(y[:, None] == classes[None, :], 1.0, -1.0).astype(np.float32)
    k = len(classes)
    W = np.zeros((X.shape[1], k), np.float32)
    b = np.zeros(k, np.float32)
    c2 = np.float32(2 * C)

    def state(W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        Z = X @ W + b
        R = np.where(Y * Z < 1, Z - Y, 0).astype(np.float32)  # (1 - y z)^2 = (z - y)^2
        return Z, R, 0.5 * (_col_dot(W, W) + b * b) + C * _col_dot(R, R)

    Z, R, f = state(W, b)
    g0, outer, cg_total = None, 0, 0
    while outer < 100:
        outer += 1
        G, gb = W + c2 * (X.T @ R), b + c2 * R.sum(0)
        gn = np.sqrt(_col_dot(G, G) + gb * gb)
        g0 = gn if g0 is None else g0
        active = gn > tol * g0
        if not active.any():
            break
        # CG on H s = -g (H v = v + 2C X_I^T X_I v), columns solved side by side.
        A = (R != 0).astype(np.float32)
        S, sb = np.zeros_like(W), np.zeros_like(b)
        Rr, rb = -G, -gb
        P, pb = Rr.copy(), rb.copy()
        rr = _col_dot(Rr, Rr) + rb * rb
        for _ in range(200):
            run = active & (np.sqrt(rr) > 0.1 * gn)
            if not run.any():
                break
            cg_total += 1
            T = A * (X @ P + pb)
            HP, hb = P + c2 * (X.T @ T), pb + c2 * T.sum(0)
            alpha = np.where(run, rr / np.maximum(_col_dot(P, HP) + pb * hb, 1e-30), 0)
            alpha = alpha.astype(np.float32)
            S, sb = S + alpha * P, sb + alpha * pb
            Rr, rb = Rr - alpha * HP, rb - alpha * hb
            rr_new = _col_dot(Rr, Rr) + rb * rb
            beta = np.where(run, rr_new / np.maximum(rr, 1e-30), 0).astype(np.float32)
            P, pb, rr = Rr + beta * P, rb + beta * pb, rr_new
        # Armijo backtracking per class along S.
        XS, gs = X @ S + sb, _col_dot(G, S) + gb * sb
        t = np.ones(k, np.float32)
        for _ in range(20):
            Zt, Wt, bt = Z + t * XS, W + t * S, b + t * sb
            Rt = np.where(Y * Zt < 1, Zt - Y, 0)
            ft = 0.5 * (_col_dot(Wt, Wt) + bt * bt) + C * _col_dot(Rt, Rt)
            ok = (ft <= f + 0.01 * t * gs) | ~active
            if ok.all():
                break
            t = np.where(ok, t, t * 0.5).astype(np.float32)
        t = np.where(active, t, 0).astype(np.float32)
        W, b = W + t * S, b + t * sb
        Z, R, f = state(W, b)
    return W, b, classes, outer, cg_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="training rows (test: +20%%)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--tols", default="1e-2,1e-3,1e-4,1e-5,1e-6")
    args = parser.parse_args()
    X_all, y_all = blobs(args.n + args.n // 5, args.classes, separation=6.0, seed=0)
    X, y, Xt, yt = X_all[: args.n], y_all[: args.n], X_all[args.n :], y_all[args.n :]
    pred = None
    for tol in (float(t) for t in args.tols.split(",")):
        start = time.perf_counter()
        W, b, classes, outer, cg = fit(X, y, tol=tol)
        seconds = time.perf_counter() - start
        pred = classes[np.argmax(Xt @ W + b, axis=1)]
        print(
            f"newton-cg tol {tol:g}: {seconds:.1f} s, accuracy {np.mean(pred == yt):.4f}, "
            f"outer {outer}, cg {cg}, load {load1():.1f}",
            flush=True,
        )
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    lib = LinearSVC(dual=False).fit(X, y).predict(Xt)
    seconds = time.perf_counter() - start
    print(
        f"liblinear LinearSVC(dual=False): {seconds:.1f} s, accuracy {np.mean(lib == yt):.4f}, "
        f"agreement with the last newton-cg run {np.mean(lib == pred):.4f}, load {load1():.1f}"
    )


if __name__ == "__main__":
    main()
