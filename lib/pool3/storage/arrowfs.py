"""The output helpers of :mod:`pool3.storage.fs`, through ``pyarrow.fs``.

:mod:`pool3.storage.fs` maps a path without scheme to the session's ``fs.defaultFS`` and sends
each call here (Spark Classic and Spark Connect alike). Paths resolve as inputs do
(:func:`pool3.storage.files.resolve`: local, ``file://``, ``hdfs://`` through libhdfs,
``s3a://``, ``gs://``, ``abfs(s)://``). Errors are :class:`OSError`.

:func:`create_new` is atomic on local disks only (a hard link); on the
other stores pyarrow has no conditional create, so it is a check, then a write (see
docs/cluster.md, "Who owns an output").
"""

from __future__ import annotations

import os
import threading

import pyarrow.fs as pafs

from pool3.storage.files import Root, is_uri, resolve


def _at(path: str) -> tuple[Root, pafs.FileSystem]:
    root = resolve(path)
    return root, root.filesystem()


def qualify(path: str) -> str:
    """As :func:`pool3.storage.fs.qualify`: a plain local path stays scheme-less."""
    root = resolve(path)
    return root.fs_path if root.local and not is_uri(path) else root.uri


def _kind(path: str) -> pafs.FileType:
    root, fs = _at(path)
    return fs.get_file_info(root.fs_path).type


def exists(path: str) -> bool:
    return _kind(path) != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    return _kind(path) == pafs.FileType.Directory


def mkdirs(path: str) -> None:
    root, fs = _at(path)
    fs.create_dir(root.fs_path, recursive=True)


def delete(path: str, *, recursive: bool = True) -> bool:
    root, fs = _at(path)
    kind = fs.get_file_info(root.fs_path).type
    if kind == pafs.FileType.NotFound:
        return False
    if kind == pafs.FileType.Directory:
        if not recursive and fs.get_file_info(pafs.FileSelector(root.fs_path)):
            raise OSError(f"cannot delete {path}: a directory that is not empty")
        fs.delete_dir(root.fs_path)
    else:
        fs.delete_file(root.fs_path)
    return True


def rename(src: str, dst: str) -> None:
    if exists(dst):
        raise OSError(f"cannot rename {src} to {dst}: it exists")
    root, fs = _at(src)
    fs.move(root.fs_path, resolve(dst).fs_path)


def list_names(path: str) -> list[str]:
    """Names under ``path``; on a local disk through the OS, so that a name that is not
    UTF-8 (which pyarrow cannot decode) comes back surrogate-escaped instead of failing."""
    root, fs = _at(path)
    if root.local:
        return sorted(os.listdir(root.fs_path))
    return sorted(info.base_name for info in fs.get_file_info(pafs.FileSelector(root.fs_path)))


def list_files(path: str, *, recursive: bool = False) -> list[str]:
    root, fs = _at(path)
    infos = fs.get_file_info(pafs.FileSelector(root.fs_path, recursive=recursive))
    return sorted(root.uri_of(i.path) for i in infos if i.type == pafs.FileType.File)


def file_sizes(path: str) -> dict[str, int]:
    """Size in bytes of every file under ``path`` (recursively), by path relative to it."""
    root, fs = _at(path)
    base = root.fs_path.rstrip("/") + "/"
    infos = fs.get_file_info(pafs.FileSelector(root.fs_path, recursive=True))
    return {
        i.path[len(base) :] if i.path.startswith(base) else i.base_name: int(i.size or 0)
        for i in infos
        if i.type == pafs.FileType.File
    }


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path``, creating missing parent folders (as Hadoop's create does)."""
    root, fs = _at(path)
    parent = root.fs_path.rstrip("/").rpartition("/")[0]
    if parent and fs.get_file_info(parent).type == pafs.FileType.NotFound:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(root.fs_path) as out:
        out.write(data)


def read_bytes(path: str) -> bytes:
    root, fs = _at(path)
    with fs.open_input_stream(root.fs_path) as stream:
        return bytes(stream.readall())


def modified_ms(path: str) -> int:
    root, fs = _at(path)
    info = fs.get_file_info(root.fs_path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(path)
    return int((info.mtime_ns or 0) // 1_000_000)


def link_new(local: str, data: bytes | None = None, *, src: str | None = None) -> bool:
    """Give the local name ``local`` to new ``data`` (or to the file ``src``, which is then
    unlinked) unless the name exists: ``link(2)`` refuses an existing name atomically."""
    aside = src or f"{local}.{os.getpid()}-{threading.get_ident()}.new"
    if src is None:
        with open(aside, "wb") as out:
            out.write(data or b"")
    try:
        os.link(aside, local)
    except FileExistsError:
        return False
    finally:
        if src is None:
            os.unlink(aside)
    if src is not None:
        os.unlink(src)
    return True


def create_new(path: str, data: bytes) -> bool:
    root, _ = _at(path)
    if root.local:
        return link_new(root.fs_path, data)
    if exists(path):
        return False
    write_bytes(path, data)
    return True


def rename_new(src: str, dst: str) -> bool:
    root = resolve(src)
    if root.local:
        return link_new(resolve(dst).fs_path, src=root.fs_path)
    if exists(dst):
        return False
    rename(src, dst)
    return True
