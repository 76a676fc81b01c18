"""Confusion-matrix picture that stays readable with 48+ classes.

Unlike the tutorial's plot, no row or column is dropped, the axes are labelled in the
right order (true on y, predicted on x) and the figure grows with the number of
classes. Uses the Agg canvas directly (no pyplot, no global state, no display needed).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ANNOTATE_MAX_CLASSES = 20
_CELL_INCHES = 0.28
_MIN_INCHES, _MAX_INCHES = 6.0, 40.0
DPI = 100


def figure_inches(n_classes: int) -> float:
    """Side of the square figure in inches: grows with the classes, bounded to 6-40."""
    return float(np.clip(3.0 + _CELL_INCHES * n_classes, _MIN_INCHES, _MAX_INCHES))


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def confusion_png(cm: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str]) -> bytes:
    """Render a confusion matrix as PNG bytes.

    Parameters
    ----------
    cm : array-like of shape (n_classes, n_classes), int
        ``cm[i][j]`` = test images of true class ``labels[i]`` predicted as ``labels[j]``.
    labels : sequence of str
        One tick per class on both axes.

    Returns
    -------
    bytes
        The PNG. Cells are coloured by the fraction of their true class (so small
        classes show up as clearly as large ones); counts are written in the cells
        when there are at most ``ANNOTATE_MAX_CLASSES`` classes (empty cells left blank).
    """
    m = np.asarray(cm, dtype=np.int64)
    n = len(labels)
    if m.shape != (n, n):
        raise ValueError(f"cm has shape {m.shape}, expected ({n}, {n}) for {n} labels.")
    row_sums = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, row_sums, out=np.zeros(m.shape, dtype=float), where=row_sums > 0)

    side = figure_inches(n)
    cell_points = side * 72 * 0.75 / max(n, 1)
    tick_size = float(np.clip(cell_points * 0.8, 4.0, 11.0))
    fig = Figure(figsize=(side, side), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(frac, interpolation="nearest", cmap="Blues", vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("Fraction of the true class", rotation=270, labelpad=18)
    ticks = np.arange(n)
    ax.set_xticks(ticks, [str(label) for label in labels], rotation=90, fontsize=tick_size)
    ax.set_yticks(ticks, [str(label) for label in labels], fontsize=tick_size)
    ax.set_xlabel("Predicted label", fontsize=12)
    ax.set_ylabel("True label", fontsize=12)
    ax.set_title(f"Confusion matrix ({n} classes, {int(m.sum())} test images)", fontsize=14)
    if n <= ANNOTATE_MAX_CLASSES:
        for i, j in np.argwhere(m > 0):
            colour = "white" if frac[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                color=colour,
                fontsize=max(tick_size - 1, 5),
            )
    fig.tight_layout()
    return _png(fig)


def cv_png(
    grid: Sequence[float], mean: Sequence[float], std: Sequence[float], chosen: float, folds: int
) -> bytes:
    """Cross-validation accuracy against C (log axis, one standard deviation of the folds as
    error bars, the chosen C marked): the picture of ``train.C = "auto"``."""
    fig = Figure(figsize=(6.0, 3.6), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pct, err = 100 * np.asarray(mean, dtype=float), 100 * np.asarray(std, dtype=float)
    ax.errorbar(grid, pct, yerr=err, marker="o", capsize=4, color="#1f5f9f")
    at = list(grid).index(chosen)
    ax.plot([chosen], [pct[at]], marker="*", markersize=16, color="#c0392b", linestyle="none")
    ax.annotate(
        f"chosen C={chosen:g}",
        (chosen, pct[at]),
        textcoords="offset points",
        xytext=(8, -14),
        color="#c0392b",
    )
    ax.set_xscale("log")
    ax.set_xlabel("C")
    ax.set_ylabel(f"{folds}-fold CV accuracy (%)")
    ax.set_title("Choice of C on the training split")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _png(fig)
