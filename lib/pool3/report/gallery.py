"""The report's picture sections: confused pairs, examples per class, suspected label errors,
duplicates and label conflicts, each image as a thumbnail with its path and labels.

Everything a user can name (paths, labels) goes through :func:`html.escape`; the only
other text in an ``src`` is a base64 data URI made by :mod:`pool3.report.thumbs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pool3.report.thumbs import Thumb

CSS = """
.strip { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.4em 0 1em; }
figure.t { margin: 0; width: 8.6em; font-size: 0.75em; line-height: 1.25; }
figure.t img, figure.t .missing { width: 96px; height: 96px; display: block;
  object-fit: contain; background: #f3f3f3; border: 1px solid #ddd; }
figure.t .missing { display: flex; align-items: center; justify-content: center;
  text-align: center; color: #a33; font-size: 0.9em; overflow: hidden; }
figure.t figcaption code { font-size: 0.95em; }
figure.t .bad { color: #b00; } figure.t .good { color: #070; }
.blocks { display: flex; flex-wrap: wrap; gap: 0.4em 2.2em; }
.blocks > section { max-width: 100%; }
.pair { display: flex; gap: 0.6em; align-items: flex-start; }
.warn { background: #fff4e5; border-left: 4px solid #f0a000; padding: 0.5em 1em; }
h3 { font-size: 1.05em; margin: 1em 0 0.2em; }
""".strip()


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def figure(path: str, thumbs: Mapping[str, Thumb], lines: Sequence[str] = ()) -> str:
    """One thumbnail with its path and caption ``lines`` (already-escaped HTML)."""
    thumb = thumbs.get(path)
    if thumb is not None and thumb.uri:
        picture = f'<img src="{thumb.uri}" alt="{_e(path)}" title="{_e(path)}">'
    else:
        reason = thumb.error if thumb is not None else "thumbnails are off"
        picture = f'<div class="missing" title="{_e(reason)}">{_e(reason)}</div>'
    caption = "<br>".join([*lines, f"<code>{_e(path)}</code>"])
    return f'<figure class="t">{picture}<figcaption>{caption}</figcaption></figure>'


def strip(figures: Sequence[str]) -> str:
    return f'<div class="strip">{"".join(figures)}</div>' if figures else "<p>&ndash;</p>"


def confused(
    pairs: Sequence[Mapping[str, Any]],
    examples: Mapping[tuple[str, str], Sequence[tuple[str, float | None]]],
    thumbs: Mapping[str, Thumb],
) -> str:
    """A strip per most-confused pair: its misclassified test images with the predicted
    class's score (where known)."""
    if not pairs:
        return "<p>No test image was misclassified.</p>"
    out = []
    for pair in pairs:
        true, predicted = str(pair["true"]), str(pair["predicted"])
        shown = examples.get((true, predicted), [])
        figures = [
            figure(
                path,
                thumbs,
                [
                    f"true <b>{_e(true)}</b>",
                    f'<span class="bad">predicted {_e(predicted)}</span>'
                    + ("" if score is None else f" (score {score:.2f})"),
                ],
            )
            for path, score in shown
        ]
        count = int(pair["count"])
        out.append(
            f"<section><h3>{_e(true)} &rarr; {_e(predicted)}: {_n(count, 'test image')}"
            f"{f', {len(shown)} shown' if len(shown) < count else ''}</h3>"
            f"{strip(figures)}</section>"
        )
    return f'<div class="blocks">{"".join(out)}</div>'


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def class_examples(examples: Mapping[str, Sequence[str]], thumbs: Mapping[str, Thumb]) -> str:
    """Correctly classified test images of each class, to compare the mistakes with."""
    rows = []
    for label, paths in examples.items():
        figures = [figure(p, thumbs, [f'<span class="good">{_e(label)}</span>']) for p in paths]
        rows.append(f"<section><h3>{_e(label)}</h3>{strip(figures)}</section>")
    if not rows:
        return "<p>No test image was classified correctly.</p>"
    return f'<div class="blocks">{"".join(rows)}</div>'


def suspects(rows: Sequence[Mapping[str, Any]], thumbs: Mapping[str, Thumb]) -> str:
    """Images whose given label the classifier confidently disagrees with, worst first."""
    if not rows:
        return "<p>None: the classifier agrees with every given label it knows.</p>"
    figures = [
        figure(
            str(r["path"]),
            thumbs,
            [
                f"{_e(r['split'])}: labelled <b>{_e(r['label'])}</b>",
                f'<span class="bad">looks like {_e(r["predicted"])}</span>',
                f"margin {float(r['margin']):.2f}",
            ],
        )
        for r in rows
    ]
    return strip(figures)


def duplicates(
    pairs: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
    thumbs: Mapping[str, Thumb],
    *,
    threshold: float,
    shown: int,
) -> str:
    """The duplicate pairs, label conflicts and cross-split ones first, as thumbnail pairs."""
    if not pairs:
        return (
            f"<p>No exact duplicates (same content) and no near duplicates (cosine &ge; "
            f"{threshold:.3f}) among the training and test images.</p>"
        )
    head = (
        f"<p>{_n(int(counts.get('exact_pairs', 0)), 'exact pair')} (same bytes), "
        f"{_n(int(counts.get('near_pairs', 0)), 'near pair')} (cosine &ge; {threshold:.3f}); "
        f"{int(counts.get('label_conflicts', 0))} with conflicting labels, "
        f"{int(counts.get('straddling', 0))} across train and test.</p>"
    )
    if counts.get("unchecked_rows"):
        head += (
            f"<p>{int(counts['unchecked_rows'])} images fell in hash buckets too large to "
            "compare pair by pair and were not checked for near duplicates.</p>"
        )
    order = sorted(pairs, key=lambda p: (not p["label_conflict"], not p["straddles"]))
    items = []
    for p in order[:shown]:
        tags = [_e(p["kind"]), f"cosine {float(p['cosine']):.3f}"]
        if p["label_conflict"]:
            tags.append('<span class="bad">label conflict</span>')
        if p["straddles"]:
            tags.append('<span class="bad">train/test</span>')
        sides = [
            figure(path, thumbs, [f"{_e(split)}: <b>{_e(label)}</b>"])
            for path, label, split in zip(p["paths"], p["labels"], p["splits"], strict=True)
        ]
        items.append(f'<div><div class="pair">{"".join(sides)}</div><p>{", ".join(tags)}</p></div>')
    more = f"<p>{len(pairs) - shown} more in metrics.json.</p>" if len(pairs) > shown else ""
    return head + f'<div class="strip">{"".join(items)}</div>' + more
