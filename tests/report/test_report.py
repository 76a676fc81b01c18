"""Report files written from a real training run: JSON, full CSV, PNG, escaped HTML."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from featuredata import digits_features, feature_table, table
from pool3.config import TrainParams
from pool3.errors import OutputError
from pool3.report.plot import confusion_png
from pool3.report.write import misclassified_examples, summary_line, write_report
from pool3.training.solvers.driver import train_and_evaluate
from pool3.training.table.rules import prepare

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def result(spark):
    """Digits with one class named like an XSS payload (labels come from folder names)."""
    X, y = digits_features(10, 50)
    y = np.where(y == "eight", EVIL, y)
    data = prepare(table(spark, feature_table(X, y)), TrainParams())
    return train_and_evaluate(data, TrainParams())


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("report") / "model"
    return model_dir, write_report(result, model_dir)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_files_written(written):
    model_dir, files = written
    assert set(files) == {"metrics_json", "confusion_csv", "confusion_png", "report_html"}
    assert {p.name for p in model_dir.iterdir()} == {
        "metrics.json",
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "report.html",
    }


def test_metrics_json_matches_result(result, written):
    _, files = written
    saved = json.loads(Path(files["metrics_json"]).read_text(encoding="utf-8"))
    assert saved["accuracy"] == result.metrics["accuracy"] > 0.9
    assert saved["labels"] == list(result.labels) and EVIL in saved["labels"]
    assert saved["run"]["seed"] == 42 and saved["run"]["test_images"] == 100
    assert saved["run"]["feature_fingerprint"] == result.fingerprint


def test_csv_has_every_class_as_rows_and_columns(result, written):
    _, files = written
    frame = pd.read_csv(files["confusion_csv"], index_col=0)
    labels = list(result.labels)
    assert frame.shape == (10, 10)
    assert list(frame.index) == labels and list(frame.columns) == labels
    # The tutorial's plot dropped the last row and column; the last class is here in full.
    last = labels[-1]
    assert frame.loc[last].sum() == result.metrics["per_class"][last]["support"]
    assert frame.to_numpy().sum() == result.n_test
    np.testing.assert_array_equal(frame.to_numpy(), result.metrics["confusion_matrix"])


def test_png_is_valid_and_grows_with_classes(written):
    _, files = written
    png = Path(files["confusion_png"]).read_bytes()
    with Image.open(io.BytesIO(png)) as image:
        image.verify()
    small = _png_size(png)
    labels = [f"category_number_{i}" for i in range(40)]
    big = _png_size(confusion_png(np.eye(40, dtype=int) * 5, labels))
    assert big[0] > small[0] * 1.5 and big[1] > small[1] * 1.5


def test_html_is_self_contained_and_escapes_labels_and_paths(result, written):
    _, files = written
    page = Path(files["report_html"]).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for label in result.labels:
        if label != EVIL:
            assert f"<td>{label}</td>" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert (
        embedded
        and base64.b64decode(embedded.group(1)) == Path(files["confusion_png"]).read_bytes()
    )
    assert f"Accuracy: {100 * result.metrics['accuracy']:.1f}%" in page
    assert result.fingerprint in page


def test_most_confused_pairs_show_misclassified_test_paths(result, written):
    _, files = written
    page = Path(files["report_html"]).read_text(encoding="utf-8")
    pairs = result.metrics["most_confused"]
    assert pairs, "the digits fit should make at least one mistake"
    examples = misclassified_examples(result.y_test, result.y_pred, result.paths_test)
    for pair in pairs:
        paths = examples[(pair["true"], pair["predicted"])]
        assert 1 <= len(paths) <= min(3, pair["count"])
        for path in paths:
            i = list(result.paths_test).index(path)
            assert (result.y_test[i], result.y_pred[i]) == (pair["true"], pair["predicted"])
            assert f"<code>{html.escape(path)}</code>" in page


def test_example_paths_argument_is_used_and_escaped(result, tmp_path):
    pair = result.metrics["most_confused"][0]
    evil_path = 's3://bucket/<img src=x onerror="alert(2)">.jpg'
    files = write_report(
        result, tmp_path, example_paths={(pair["true"], pair["predicted"]): [evil_path]}
    )
    page = Path(files["report_html"]).read_text(encoding="utf-8")
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;.jpg" in page


def test_summary_line_tutorial_style():
    line = summary_line({"accuracy": 0.954, "n_test": 1234, "n_classes": 48, "f1_macro": 0.9512})
    assert line.startswith("Accuracy: 95.4% (")
    assert "n_test=1234" in line and "classes=48" in line


def test_unwritable_directory_is_an_output_error(result, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot write the report"):
        write_report(result, blocker / "model")


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(result, tmp_path):
    from pool3.report.write import confusion_frame, spreadsheet_safe

    formula = "=cmd|' /C calc'!A0"
    assert spreadsheet_safe(formula) == "'" + formula
    for cell in ("+SUM(A1)", "-2+3", "@x", "\tx", "\rx"):
        assert spreadsheet_safe(cell) == "'" + cell
    for cell in ("-1", "+3.5", "boot", "a=b", ""):
        assert spreadsheet_safe(cell) == cell
    metrics = {**result.metrics, "labels": [formula, "-1", "boot"]}
    metrics["confusion_matrix"] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    path = tmp_path / "cm.csv"
    confusion_frame(metrics).to_csv(path, encoding="utf-8")
    frame = pd.read_csv(path, index_col=0, dtype=str)
    assert list(frame.columns) == ["'" + formula, "-1", "boot"]
    assert list(frame.index) == ["'" + formula, "-1", "boot"]
