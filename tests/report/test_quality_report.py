"""The report a person looks at, from real images through the real model: planted exact and
near duplicates and a label conflict are found and tagged in metrics.json, thumbnails are
embedded and escaped, and the page renders in a real headless browser (Chromium).

Images: 12 per class of the bundled Fashion-MNIST sample (real photos of clothes, 28x28),
plus planted copies:

- ``coat_90001.png``: the same bytes as a coat image (exact duplicate, same label); deleted
  after featurizing, so its thumbnail must say that it cannot be read any more;
- ``t_shirt_90002.png``: the same bytes as a shirt image (exact duplicate, label conflict);
- ``<script>alert(1)</script>``-like folder holding ``bag_90003.jpg``: a bag image
  re-encoded as JPEG (other bytes, near duplicate), whose path must render as text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import SPARK_TEST_OVERRIDES
from paths import SAMPLE
from pool3.commands.featurize import run_featurize
from pool3.commands.train import run_train
from pool3.config import load_config
from pool3_tools.datasets import FASHION_MNIST_CLASSES

PER_CLASS = 12
#: a folder name with markup in it (a file name cannot hold "/", so no closing tag)
EVIL_DIR = "<script>alert(1)<b onmouseover=alert(2)>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _config(**overrides):
    return load_config(overrides={**SPARK_TEST_OVERRIDES, **overrides}, env={})


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    images = root / "images"
    images.mkdir()
    for label in FASHION_MNIST_CLASSES:
        for src in sorted(SAMPLE.glob(f"{label}_[0-9]*.png"))[:PER_CLASS]:
            shutil.copy(src, images / src.name)
    coat = sorted(images.glob("coat_*.png"))[0]
    shirt = sorted(images.glob("shirt_*.png"))[0]
    bag = sorted(images.glob("bag_*.png"))[0]
    shutil.copy(coat, images / "coat_90001.png")
    shutil.copy(shirt, images / "t_shirt_90002.png")
    (images / EVIL_DIR).mkdir()
    near = images / EVIL_DIR / "bag_90003.jpg"
    with Image.open(bag) as img:
        img.convert("RGB").save(near, format="JPEG", quality=90)
    feats, model = root / "features", root / "model"
    run_featurize(spark, _config(), input_path=str(images), output_path=str(feats))
    (images / "coat_90001.png").unlink()  # gone before the report reads it
    summary = run_train(spark, _config(), features_path=str(feats), model_dir=str(model))
    return {
        "root": root,
        "features": feats,
        "model": model,
        "summary": summary,
        "coat": coat,
        "shirt": shirt,
        "bag": bag,
        "near": near,
    }


def _names(pair) -> tuple[str, ...]:
    return tuple(sorted(Path(p.removeprefix("file:")).name for p in pair["paths"]))


def _metrics(planted) -> dict:
    return json.loads((planted["model"] / "metrics.json").read_text(encoding="utf-8"))


def test_planted_duplicates_and_conflict_are_found_and_tagged(planted):
    doc = _metrics(planted)
    pairs = {_names(p): p for p in doc["duplicates"]}
    exact = pairs[tuple(sorted((planted["coat"].name, "coat_90001.png")))]
    assert exact["kind"] == "exact" and exact["cosine"] == 1.0
    assert exact["label_conflict"] is False and exact["labels"] == ["coat", "coat"]
    conflict = pairs[tuple(sorted((planted["shirt"].name, "t_shirt_90002.png")))]
    assert conflict["kind"] == "exact" and conflict["label_conflict"] is True
    assert sorted(conflict["labels"]) == ["shirt", "t_shirt"]
    near = pairs[tuple(sorted((planted["bag"].name, "bag_90003.jpg")))]
    assert near["kind"] == "near" and 0.98 <= near["cosine"] < 1.0
    assert near["label_conflict"] is False
    for pair in doc["duplicates"]:
        assert set(pair) >= {"paths", "kind", "cosine", "splits", "label_conflict"}
        assert set(pair["splits"]) <= {"train", "test"} and len(pair["paths"]) == 2
        assert pair["label_conflict"] == (pair["labels"][0] != pair["labels"][1])
        assert pair["straddles"] == (pair["splits"][0] != pair["splits"][1])
    counts = doc["duplicate_counts"]
    assert counts["exact_pairs"] == 2 and counts["label_conflicts"] >= 1
    assert counts["near_pairs"] == len([p for p in doc["duplicates"] if p["kind"] == "near"])
    # the content split keeps exact copies on one side
    assert not exact["straddles"] and not conflict["straddles"]
    assert planted["summary"]["duplicate_counts"] == counts


def test_near_pairs_are_those_of_an_exact_all_pairs_search(planted):
    """A table this small is searched exactly: the near pairs are every pair of different
    files with cosine >= 0.98 by the all-pairs product, the planted one among them."""
    rows = pq.read_table(planted["features"], columns=["path", "sha256", "features"]).to_pylist()
    X = np.array([r["features"] for r in rows], dtype=np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    cos = X @ X.T
    expected = {
        tuple(sorted((rows[i]["path"], rows[j]["path"])))
        for i, j in zip(*np.nonzero(np.triu(cos, 1) >= 0.98), strict=True)
        if rows[i]["sha256"] != rows[j]["sha256"]
    }
    doc = _metrics(planted)
    found = {tuple(sorted(p["paths"])) for p in doc["duplicates"] if p["kind"] == "near"}
    assert doc["duplicate_search"] == "exact" and found == expected
    assert any(p.endswith("bag_90003.jpg") for pair in found for p in pair)


def test_uncertainty_and_suspects_are_in_metrics_json(planted):
    doc = _metrics(planted)
    low, high = doc["accuracy_ci95"]
    assert 0.0 <= low < doc["accuracy"] < high <= 1.0
    for suspect in doc["suspected_label_errors"]:
        assert suspect["predicted"] != suspect["label"] and suspect["margin"] >= 0.5
        assert suspect["split"] in ("train", "test")
    margins = [s["margin"] for s in doc["suspected_label_errors"] if s["split"] == "test"]
    assert margins == sorted(margins, reverse=True)


def _page(planted) -> str:
    return (planted["model"] / "report.html").read_text(encoding="utf-8")


def test_thumbnails_are_embedded_escaped_and_missing_ones_said(planted):
    page = _page(planted)
    thumbs = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(thumbs) >= 2 * len(FASHION_MNIST_CLASSES)  # examples of every class, at least
    assert "<script" not in page.lower() and "<b onmouseover" not in page
    assert "&lt;script&gt;alert(1)&lt;b onmouseover=alert(2)&gt;" in page
    assert "cannot be read any more" in page  # coat_90001.png was deleted
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "Content-Security-Policy" in page
    assert "Duplicates and label conflicts" in page and "label conflict" in page
    assert "95% CI" in page


def test_report_renders_in_headless_chromium(planted, tmp_path):
    """The page as a person sees it: Chromium loads it without console errors or blocked
    resources, the markup-named path is a text node, and the screenshot is not blank."""
    assert CHROMIUM, "no chromium on PATH: make install installs it (apt-get install chromium)"
    report = planted["model"] / "report.html"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<script" not in dom.stdout.lower()
    assert "&lt;script&gt;alert(1)" in dom.stdout
    assert dom.stdout.count("<img ") == _page(planted).count("<img ")
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Refused to" in ln]
    assert not console, console
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [*base, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1280, 2400)
        pixels = np.asarray(img.convert("L"), dtype=np.float32)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text, matrix, pictures
