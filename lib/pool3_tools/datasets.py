"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, written as labelled PNGs.

Fashion-MNIST (Zalando Research, MIT licence) is 70,000 greyscale 28x28 images of ten
clothing classes. Debian ships the original IDX files in ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``),
so a machine without internet can still produce a real, labelled image folder.

:func:`write_fashion_mnist` writes ``<label>_<n>.png`` files, where ``<n>`` is the image's
index in the IDX file: the tutorial's file-name labels
(:func:`pool3.images.labels.label_from_filename`) then work unchanged, and every file can
be traced back to its source row.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from pool3.errors import ConfigError, InputError, OutputError

logger = logging.getLogger(__name__)

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "t_shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
"""Class names by label index; underscores instead of the official "T-shirt/top", so that
``<label>_<n>.png`` is a valid file name and ``label_from_filename`` recovers the label."""

_SPLITS = {"train": "train", "t10k": "t10k", "test": "t10k"}
# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "IDX file format").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist` or pass root=<folder>"


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into an array.

    Parameters
    ----------
    path : str or Path
        An ``*-idx{1,3}-ubyte`` file, optionally ``.gz``-compressed (detected from the content).

    Returns
    -------
    numpy.ndarray
        Shape as stored in the header, e.g. ``(60000, 28, 28)`` uint8 for images and
        ``(60000,)`` uint8 for labels; native byte order.

    Raises
    ------
    InputError
        If the file is missing, has no IDX magic number, or its size does not match the header.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise InputError(f"IDX file {str(path)!r} does not exist; {_INSTALL_HINT}") from err
    except OSError as err:
        raise InputError(f"cannot read IDX file {str(path)!r}: {err}") from err
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise InputError(f"IDX file {str(path)!r} is not a valid gzip file: {err}") from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise InputError(
            f"{str(path)!r} is not an IDX file: expected magic 00 00 <type> <ndim>, "
            f"got {raw[:4].hex(' ')!r}; check the path points at an *-idx*-ubyte(.gz) file"
        )
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(shape) != ndim or len(raw) != expected:
        raise InputError(
            f"IDX file {str(path)!r} is damaged: header says shape {shape} "
            f"({expected} bytes), file has {len(raw)} bytes; reinstall dataset-fashion-mnist"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_fashion_mnist(
    split: str = "train", *, root: str | Path = FASHION_MNIST_ROOT
) -> tuple[np.ndarray, np.ndarray]:
    """Load one Fashion-MNIST split.

    Parameters
    ----------
    split : {"train", "t10k", "test"}
        ``"test"`` is an alias of ``"t10k"``.
    root : str or Path
        Folder holding the four ``*-ubyte.gz`` files.

    Returns
    -------
    images : numpy.ndarray of shape (n, 28, 28), uint8
    labels : numpy.ndarray of shape (n,), uint8, indices into :data:`FASHION_MNIST_CLASSES`
    """
    if split not in _SPLITS:
        raise ConfigError(
            f"unknown Fashion-MNIST split {split!r}; expected one of {sorted(_SPLITS)}"
        )
    prefix = Path(root) / _SPLITS[split]
    images = read_idx(f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz")
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise InputError(
            f"Fashion-MNIST {split!r} files under {str(root)!r} do not match: images "
            f"{images.shape}, labels {labels.shape}; reinstall dataset-fashion-mnist"
        )
    return images, labels


def write_fashion_mnist(
    out_dir: str | Path,
    *,
    split: str = "train",
    per_class: int | None = None,
    root: str | Path = FASHION_MNIST_ROOT,
    seed: int = 0,
) -> int:
    """Write Fashion-MNIST images as 28x28 greyscale PNGs named ``<label>_<index>.png``.

    Parameters
    ----------
    out_dir : str or Path
        Created if missing. Existing files with the same names are overwritten; other files
        are left alone.
    split : {"train", "t10k", "test"}
    per_class : int or None
        Number of images per class; None writes the whole split. The sample is drawn with
        ``numpy.random.default_rng(seed)`` without replacement, then kept in file order, so the
        same arguments always give the same files.
    root : str or Path
        Folder of the IDX files (Debian: ``/usr/share/datasets/fashion-mnist``).
    seed : int
        Seed of the per-class sample; ignored when ``per_class`` is None.

    Returns
    -------
    int
        Number of files written.
    """
    images, labels = load_fashion_mnist(split, root=root)
    indices = _sample_indices(labels, per_class=per_class, seed=seed)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for i in indices:
            name = f"{FASHION_MNIST_CLASSES[labels[i]]}_{i}.png"
            Image.fromarray(images[i]).save(out / name, format="PNG")
    except OSError as err:
        raise OutputError(
            f"cannot write Fashion-MNIST PNGs to {str(out)!r}: {err}; choose a writable folder"
        ) from err
    logger.info("wrote %d Fashion-MNIST %s images to %s", len(indices), split, out)
    return len(indices)


def _sample_indices(labels: np.ndarray, *, per_class: int | None, seed: int) -> np.ndarray:
    if per_class is None:
        return np.arange(labels.shape[0])
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class must be a positive integer or None, got {per_class!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(len(FASHION_MNIST_CLASSES)):
        members = np.flatnonzero(labels == k)
        if members.size < per_class:
            raise ConfigError(
                f"per_class={per_class} but class {FASHION_MNIST_CLASSES[k]!r} has only "
                f"{members.size} images in this split; use a smaller per_class"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))
