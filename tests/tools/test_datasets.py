"""pool3_tools.datasets: IDX reading, Fashion-MNIST PNGs, and the bundled sample."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import idx_bytes
from paths import SAMPLE
from pool3.errors import ConfigError, InputError
from pool3.images.labels import label_from_filename
from pool3_tools.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ROOT,
    load_fashion_mnist,
    read_idx,
    write_fashion_mnist,
)

ROOT = Path(FASHION_MNIST_ROOT)
BUNDLED = SAMPLE


def require_real_dataset() -> None:
    """The two tests of the real data fail (not skip) without it: it is an install step."""
    if not (ROOT / "train-labels-idx1-ubyte.gz").exists():
        pytest.fail(
            f"{ROOT} is missing: apt-get install dataset-fashion-mnist (make install "
            "does it when run as root)"
        )


def test_read_idx_plain_and_gzip_with_wider_types(tmp_path: Path) -> None:
    values = np.array([[1, -2, 300], [-32768, 0, 32767]], dtype=np.int16)
    (tmp_path / "a.idx").write_bytes(idx_bytes(values, 0x0B))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(values, 0x0B)))
    for name in ("a.idx", "a.idx.gz"):
        got = read_idx(tmp_path / name)
        np.testing.assert_array_equal(got, values)
        assert got.dtype == np.dtype(np.int16)  # native order


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00\x08", "not an IDX file"),
        (b"PK\x03\x04zip!", "not an IDX file"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "damaged"),
        (b"\x1f\x8bnot really gzip", "not a valid gzip"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_idx(path)


def test_missing_idx_file_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        write_fashion_mnist(tmp_path / "out", root=tmp_path)


def test_load_fashion_mnist_both_splits(small_fashion_mnist: Path) -> None:
    images, labels = load_fashion_mnist("train", root=small_fashion_mnist)
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60,) and set(np.unique(labels)) == set(range(10))
    test_images, _ = load_fashion_mnist("test", root=small_fashion_mnist)  # alias of t10k
    assert test_images.shape == (40, 28, 28)
    assert len(FASHION_MNIST_CLASSES) == 10
    assert all("/" not in c and " " not in c for c in FASHION_MNIST_CLASSES)


def test_the_real_fashion_mnist_reads() -> None:
    require_real_dataset()
    images, labels = load_fashion_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and set(np.unique(labels)) == set(range(10))
    test_images, _ = load_fashion_mnist("test")  # alias of t10k
    assert test_images.shape == (10000, 28, 28)


def test_write_fashion_mnist_files_match_the_idx_arrays(
    tmp_path: Path, small_fashion_mnist: Path
) -> None:
    images, labels = load_fashion_mnist("t10k", root=small_fashion_mnist)
    assert (
        write_fashion_mnist(tmp_path, split="t10k", per_class=3, seed=5, root=small_fashion_mnist)
        == 30
    )
    files = sorted(tmp_path.iterdir())
    assert Counter(label_from_filename(f.name) for f in files) == dict.fromkeys(
        FASHION_MNIST_CLASSES, 3
    )
    for f in files:
        index = int(f.stem.rsplit("_", 1)[1])
        assert label_from_filename(f.name) == FASHION_MNIST_CLASSES[labels[index]]
        with Image.open(f) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "L", (28, 28))
            np.testing.assert_array_equal(np.asarray(img), images[index])


def test_write_fashion_mnist_is_deterministic(tmp_path: Path, small_fashion_mnist: Path) -> None:
    for folder, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_fashion_mnist(
            tmp_path / folder, split="t10k", per_class=2, seed=seed, root=small_fashion_mnist
        )
    names = {d: sorted(p.name for p in (tmp_path / d).iterdir()) for d in "abc"}
    assert names["a"] == names["b"]
    assert names["a"] != names["c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, "unknown Fashion-MNIST split"),
        ({"per_class": 0}, "positive integer"),
        ({"per_class": 5, "split": "t10k"}, "has only 4 images"),
    ],
)
def test_write_fashion_mnist_rejects_bad_arguments(
    tmp_path: Path, small_fashion_mnist: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        write_fashion_mnist(tmp_path, root=small_fashion_mnist, **kwargs)  # type: ignore[arg-type]


def test_bundled_sample_is_what_its_readme_says(tmp_path: Path) -> None:
    require_real_dataset()
    # README: write_fashion_mnist("data/fashion-mnist-sample", split="train", per_class=30, seed=0)
    assert write_fashion_mnist(tmp_path, split="train", per_class=30, seed=0) == 300
    bundled = sorted(p.name for p in BUNDLED.glob("*.png"))
    assert bundled == sorted(p.name for p in tmp_path.iterdir())
    for name in bundled:
        with Image.open(BUNDLED / name) as ours, Image.open(tmp_path / name) as fresh:
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(fresh))
