"""What a command prints when it succeeds: a few lines for a person, or one JSON object.

The text form says what happened and where the output is (images, errors by reason,
duplicates, accuracy, the report); ``--log-format json`` prints the whole summary as one
JSON object instead, the last line of stdout, for schedulers. The resolved configuration
is in the output's ``_pool3_manifest.json`` either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _reasons(by_reason: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1]))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _images(command: str, s: Mapping[str, Any]) -> list[str]:
    verb = "featurized" if command == "featurize" else "classified"
    reused = f", {s['reused']} reused" if s.get("reused") else ""
    lines = [
        f"pool3 {command}: {s['images']} images {verb} into {s['output']} in "
        f"{s.get('wall_seconds', 0):.1f} s ({s.get('images_per_second', 0):.1f} images/s; "
        f"{s.get('runtime')} {s.get('precision')}{reused})"
    ]
    errors = int(s.get("errors", 0))
    if errors:
        lines.append(
            f"errors: {_n(errors, 'image')} ({100 * float(s.get('error_rate', 0)):.1f}%), recorded "
            f"as error rows: {_reasons(s.get('errors_by_reason', {}))}"
        )
    else:
        lines.append("errors: none")
    if s.get("ignored"):
        lines.append(
            f"ignored: {_n(s['ignored'], 'file')} that pool3 does not read as images "
            f"({_reasons(s.get('ignored_by_reason', {}))})"
        )
    if s.get("unlabelled"):
        lines.append(f"unlabelled: {s['unlabelled']} images (no label from the layout)")
    return lines + _mlflow(s)


def _train(s: Mapping[str, Any]) -> list[str]:
    low, high = s.get("accuracy_ci95") or (0.0, 0.0)
    lines = [s["summary_line"], f"95% interval (Wilson): {100 * low:.1f}-{100 * high:.1f}%"]
    rows = s.get("rows")
    if rows:
        lines.append(
            f"images: {rows.get('rows_total')} rows, {rows.get('rows_used')} used "
            f"({s.get('n_train')} train / {s.get('n_test')} test); not used: "
            f"{rows.get('rows_error')} error rows, {rows.get('rows_unlabelled')} unlabelled"
        )
    dup = s.get("duplicate_counts")
    if dup is not None:
        text = (
            f"duplicates: {dup.get('exact_pairs', 0)} exact and {dup.get('near_pairs', 0)} "
            f"near pairs, {dup.get('label_conflicts', 0)} with conflicting labels, "
            f"{dup.get('straddling', 0)} across train and test"
        )
        leak = s.get("leakage")
        if leak and leak.get("accuracy") is not None:
            text += (
                f"; accuracy without the {leak['leaked_test_images']} leaked test images: "
                f"{100 * leak['accuracy']:.1f}%"
            )
        lines.append(text)
    search = s.get("C_search")
    if search:
        at = search["grid"].index(search["chosen"])
        lines.append(
            f"C: auto -> {search['chosen']:g} ({search['folds']}-fold CV accuracy "
            f"{100 * search['cv_accuracy_mean'][at]:.1f}% on the training split)"
        )
    fit = s.get("fit")
    if fit:
        where = (
            f"{s['spark_jobs']} Spark jobs"
            if s.get("spark_jobs") is not None
            else f"{fit['passes']} passes over the rows"
        )
        lines.append(
            f"fit: {where}, {fit['newton_steps']} Newton steps, {fit['cg_steps']} CG steps "
            f"({fit['cg_passes']} as passes), {fit['active_rows_peak']} active rows held at "
            f"most, {fit['collected_bytes'] / 2**20:.0f} MB collected"
        )
    if s.get("suspected_label_errors"):
        lines.append(f"suspected label errors: {s['suspected_label_errors']} (in the report)")
    lines.append(f"Report: {s['model_dir']}/report.html")
    return lines + _mlflow(s)


def _mlflow(s: Mapping[str, Any]) -> list[str]:
    """The MLflow run (and model) a tracked run logged, if any."""
    tracked = s.get("mlflow")
    if not tracked:
        return []
    line = f"MLflow: run {tracked['run_id']} (experiment {tracked['experiment_id']})"
    if tracked.get("registered_uri"):
        line += f", model {tracked['registered_uri']} ({tracked['registered']})"
    elif tracked.get("model_uri"):
        line += f", model {tracked['model_uri']}"
    return [line]


def summary_lines(command: str, summary: Mapping[str, Any], *, log_format: str) -> list[str]:
    """The lines printed on stdout at the end of a successful ``command``."""
    if log_format == "json":
        return [json.dumps({"command": command, **summary}, sort_keys=True, default=str)]
    if command == "train":
        return _train(summary)
    if command in ("featurize", "classify"):
        return _images(command, summary)
    return [f"pool3 {command}: " + ", ".join(f"{k}={v}" for k, v in summary.items())]
