"""What the commands print at the end: a few lines for a person, or one JSON object."""

from __future__ import annotations

import json

from pool3.commands.summary import summary_lines

FEATURIZE = {
    "images": 300, "output": "hdfs:///f", "wall_seconds": 26.8, "images_per_second": 18.7,
    "runtime": "openvino", "precision": "bfloat16", "errors": 3, "error_rate": 0.01,
    "errors_by_reason": {"truncated": 2, "empty": 1}, "ignored": 1,
    "ignored_by_reason": {"not_image": 1}, "reused": 0, "unlabelled": 0,
}  # fmt: skip
TRAIN = {
    "summary_line": "Accuracy: 81.7% (n_test=60, classes=10, macro F1=0.810)",
    "accuracy": 0.8167, "accuracy_ci95": [0.7008, 0.8944], "model_dir": "s3a://b/model",
    "duplicate_counts": {"exact_pairs": 2, "near_pairs": 1, "label_conflicts": 1,
                         "straddling": 1},
    "leakage": {"leaked_test_images": 1, "accuracy": 0.8, "n_test": 59},
    "suspected_label_errors": 4, "n_test": 60, "n_train": 240,
    "rows": {"rows_total": 303, "rows_used": 300, "rows_error": 3, "rows_unlabelled": 0},
}  # fmt: skip


def test_featurize_says_images_errors_by_reason_and_ignored_files():
    lines = summary_lines("featurize", FEATURIZE, log_format="text")
    assert lines[0].startswith("pool3 featurize: 300 images featurized into hdfs:///f in 26.8 s")
    assert lines[1] == "errors: 3 images (1.0%), recorded as error rows: truncated 2, empty 1"
    assert lines[2].startswith("ignored: 1 file that") and "not_image 1" in lines[2]


def test_train_says_accuracy_interval_duplicates_leakage_and_the_report():
    lines = summary_lines("train", TRAIN, log_format="text")
    assert lines[0] == TRAIN["summary_line"]
    assert lines[1] == "95% interval (Wilson): 70.1-89.4%"
    assert "300 used (240 train / 60 test)" in lines[2] and "3 error rows" in lines[2]
    assert "2 exact and 1 near pairs, 1 with conflicting labels" in lines[3]
    assert "without the 1 leaked test images: 80.0%" in lines[3]
    assert lines[-1] == "Report: s3a://b/model/report.html"


def test_json_is_one_object_with_everything():
    (line,) = summary_lines("train", TRAIN, log_format="json")
    doc = json.loads(line)
    assert doc["command"] == "train" and doc["duplicate_counts"]["exact_pairs"] == 2
    assert doc["rows"]["rows_error"] == 3
