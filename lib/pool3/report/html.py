"""The self-contained ``report.html``: inline CSS, the PNG and thumbnails as data URIs, no
scripts (a ``Content-Security-Policy`` forbids them and any fetch from elsewhere).

Labels and paths come from folder and file names, which anyone can choose, so every
one of them goes through :func:`html.escape` before it reaches the page.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pool3.report.gallery import CSS as GALLERY_CSS

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.low td { background: #fdecea; }
.accuracy { font-size: 2em; font-weight: bold; }
code { font-size: 0.9em; word-break: break-all; }
img { max-width: 100%; height: auto; }
nav { margin: 1em 0; font-size: 0.95em; }
""".strip()


#: no script runs, nothing is fetched: pictures are data URIs, the style is inline
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    marks: Sequence[str] = (),
) -> str:
    """Rows hold already-escaped HTML; ``numeric`` columns are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{marks[i]}"' if i < len(marks) and marks[i] else ""
        cells = "".join(
            f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary(metrics: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    rows = [
        ("macro F1", f"{metrics['f1_macro']:.3f}"),
        ("weighted F1", f"{metrics['f1_weighted']:.3f}"),
        (
            "macro precision / recall",
            f"{metrics['precision_macro']:.3f} / {metrics['recall_macro']:.3f}",
        ),
        ("classes", str(metrics["n_classes"])),
    ]
    rows += [(str(k).replace("_", " "), str(v)) for k, v in run.items()]
    return _table(["", "value"], [(_e(k), _e(v)) for k, v in rows])


def _per_class(metrics: Mapping[str, Any]) -> str:
    rows, marks = [], []
    for label, s in metrics["per_class"].items():
        rows.append(
            (
                _e(label),
                f"{s['precision']:.3f}",
                f"{s['recall']:.3f}",
                f"{s['f1']:.3f}",
                str(s["support"]),
            )
        )
        marks.append("low" if s["support"] and s["f1"] < metrics["f1_macro"] - 0.1 else "")
    return _table(
        ["class", "precision", "recall", "F1", "support (test)"],
        rows,
        numeric=(1, 2, 3, 4),
        marks=marks,
    )


def _confused(metrics: Mapping[str, Any], examples: Mapping[tuple[str, str], Sequence[str]]) -> str:
    pairs = metrics["most_confused"]
    if not pairs:
        return "<p>No test image was misclassified.</p>"
    rows = []
    for pair in pairs:
        paths = list(examples.get((pair["true"], pair["predicted"]), []))[:3]
        shown = "<br>".join(f"<code>{_e(p)}</code>" for p in paths) or "&ndash;"
        rows.append((_e(pair["true"]), _e(pair["predicted"]), str(pair["count"]), shown))
    return _table(
        ["true class", "predicted as", "images", "examples (test set)"], rows, numeric=(2,)
    )


def _slug(title: str) -> str:
    """``"Per-class scores"`` -> ``"per-class-scores"``: the section's anchor."""
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _accuracy(metrics: Mapping[str, Any]) -> str:
    interval = metrics.get("accuracy_ci95")
    ci = ""
    if interval:
        ci = f" <small>(95% CI {_pct(interval[0])}&ndash;{_pct(interval[1])})</small>"
    return f'<p class="accuracy">Accuracy: {_pct(metrics["accuracy"])}{ci}</p>'


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def c_search(search: Mapping[str, Any], png: bytes) -> str:
    """The ``train.C = "auto"`` section: the plot of CV accuracy against C and its table."""
    chosen = search["chosen"]
    rows = [
        [f"{c:g}" + (" (chosen)" if c == chosen else ""), _pct(m), _pct(s)]
        for c, m, s in zip(
            search["grid"], search["cv_accuracy_mean"], search["cv_accuracy_std"], strict=True
        )
    ]
    return (
        f"<p>C = {chosen:g}, chosen by {int(search['folds'])}-fold stratified cross-validation "
        f"on the training split only (the test images were not used) in "
        f"{float(search['seconds']):.1f} s.</p>"
        f'<img src="{_png_uri(png)}" alt="Cross-validation accuracy against C">'
        + _table(["C", "CV accuracy", "std over folds"], rows, numeric=(1, 2))
    )


def render_html(
    metrics: Mapping[str, Any],
    *,
    run: Mapping[str, Any],
    png: bytes,
    examples: Mapping[tuple[str, str], Sequence[str]],
    sections: Mapping[str, str] | None = None,
    notice: str = "",
) -> str:
    """Build the report page.

    Parameters
    ----------
    metrics : dict
        As returned by :func:`pool3.training.evaluation.metrics.metrics`.
    run : dict, keyword-only
        Facts shown in the summary (sizes, fingerprint, split, seed, solver...).
    png : bytes, keyword-only
        The confusion-matrix PNG, embedded as a base64 data URI.
    examples : dict, keyword-only
        ``{(true, predicted): [path, ...]}``; up to 3 paths are shown per pair (used when
        ``sections`` has no ``"Most confused pairs"``).
    sections : dict, keyword-only
        ``{title: html}``: picture sections (:mod:`pool3.report.gallery`), already escaped;
        ``"Most confused pairs"`` replaces the table of paths.
    notice : str, keyword-only
        Escaped HTML shown under the accuracy (e.g. train/test leakage).

    Returns
    -------
    str
        A complete HTML document with no external resources.
    """
    data_uri = _png_uri(png)
    sections = dict(sections or {})
    confused = sections.pop("Most confused pairs", None) or _confused(metrics, examples)
    more = "".join(f'<h2 id="{_slug(t)}">{_e(t)}</h2>\n{body}\n' for t, body in sections.items())
    titles = ["Summary", "Confusion matrix", "Per-class scores", "Most confused pairs", *sections]
    nav = " &middot; ".join(f'<a href="#{_slug(t)}">{_e(t)}</a>' for t in titles)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>pool3 classifier report</title>
<style>
{_CSS}
{GALLERY_CSS}
</style>
</head>
<body>
<h1>pool3 classifier report</h1>
{_accuracy(metrics)}
<p>on {int(metrics["n_test"])} held-out test images of {int(metrics["n_classes"])} classes.</p>
{notice}
<nav>{nav}</nav>
<h2 id="summary">Summary</h2>
{_summary(metrics, run)}
<h2 id="confusion-matrix">Confusion matrix</h2>
<p>Rows are true classes, columns predicted classes; every class is shown.</p>
<img src="{data_uri}" alt="Confusion matrix">
<h2 id="per-class-scores">Per-class scores</h2>
{_per_class(metrics)}
<h2 id="most-confused-pairs">Most confused pairs</h2>
{confused}
{more}</body>
</html>
"""
