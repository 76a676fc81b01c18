"""The report of a 100-class model with every picture section full stays self-contained and
small: real photos (scikit-learn's two sample images, cut into 1000 different crops) stand
behind a 100-class feature table with 20% of its labels flipped, so there are many
misclassified images, suspected label errors and (planted) duplicate pairs to show."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

from featuredata import blobs, feature_table, table
from pool3.config import TrainParams
from pool3.duplicates.search import MAX_LISTED, Duplicates
from pool3.report import write as report
from pool3.training.solvers.driver import train_and_evaluate
from pool3.training.table.rules import prepare

N_CLASSES, PER_CLASS = 100, 10
LIMIT_BYTES = 3 * 2**20


@pytest.fixture(scope="module")
def hundred(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("hundred")
    X, y = blobs(N_CLASSES, PER_CLASS, seed=1)
    rng = np.random.default_rng(5)
    flip = rng.random(len(y)) < 0.2
    y = np.where(flip, rng.permutation(y), y)
    frame = feature_table(np.maximum(X, 0.0), y, prefix=str(root))
    photos = load_sample_images().images
    for i, path in enumerate(frame["path"]):
        photo = photos[i % 2]
        side = int(rng.integers(160, 420))
        top = int(rng.integers(0, photo.shape[0] - side))
        left = int(rng.integers(0, photo.shape[1] - side))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        out = root / path.removeprefix(str(root) + "/")
        out.parent.mkdir(parents=True, exist_ok=True)
        crop.save(out, format="JPEG", quality=90)
    params = TrainParams(n_jobs=-1)
    result = train_and_evaluate(prepare(table(spark, frame), params), params)
    paths = frame["path"].tolist()
    pairs = [
        {
            "paths": [paths[i], paths[-1 - i]],
            "kind": "near",
            "cosine": 0.99,
            "labels": [y[i], y[-1 - i]],
            "splits": ["train", "test"],
            "label_conflict": y[i] != y[-1 - i],
            "straddles": True,
        }
        for i in range(MAX_LISTED)
    ]
    counts = {"exact_pairs": 0, "near_pairs": len(pairs), "pairs": len(pairs)}
    counts |= {"label_conflicts": sum(p["label_conflict"] for p in pairs), "straddling": 500}
    duplicates = Duplicates(pairs, counts, frozenset(result.paths_test[:50].tolist()), 0.98)
    files = report.report_files(result, duplicates=duplicates, spark=spark)
    return result, files


def test_a_100_class_report_stays_under_3_mb(hundred):
    result, files = hundred
    page = files["report.html"]
    assert len(page) < LIMIT_BYTES, f"report.html is {len(page) / 2**20:.2f} MB"
    print(f"100-class report.html: {len(page) / 2**20:.2f} MB")
    assert len(result.metrics["most_confused"]) == 10 and len(result.labels) == N_CLASSES


def test_every_section_is_full_and_within_its_budget(hundred):
    result, files = hundred
    page = files["report.html"].decode("utf-8")
    thumbs = page.count('src="data:image/jpeg;base64,')
    budget = report.THUMBS_MISCLASSIFIED + report.CORRECT_TOTAL + 2 * report.DUPLICATES_SHOWN
    assert 150 <= thumbs <= budget + 2 * 20, thumbs
    assert "cannot be read" not in page
    confused = re.search(r"Most confused pairs</h2>(.*?)<h2", page, re.S).group(1)
    shown = sum(min(p["count"], report.THUMBS_PER_PAIR) for p in result.metrics["most_confused"])
    assert confused.count("<img ") == min(shown, report.THUMBS_MISCLASSIFIED)
    assert "Train/test leakage" in page and f"{MAX_LISTED - report.DUPLICATES_SHOWN} more" in page
    assert len(result.suspects) >= 10
