"""Where the tests' files are: the repository, the bundled sample, the committed test data."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
#: 300 bundled Fashion-MNIST PNGs (data/fashion-mnist-sample), 10 classes
SAMPLE = REPO / "data" / "fashion-mnist-sample"
#: golden images and their reference features (tests/data/golden/make_golden.py)
GOLDEN = TESTS / "data" / "golden"
#: the committed messy images (tests/make_messy_images.py)
IMAGES = TESTS / "data" / "images"
#: small programs the tests run (spark-submit apps, a CLI with an injected fault)
APPS = TESTS / "apps"
