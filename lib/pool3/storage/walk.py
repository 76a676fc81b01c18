"""Walking an input folder: every entry below it, local (following links like ``find -L``)
or on HDFS and object stores (pyarrow.fs), with the folders that could not be listed.

Used by :mod:`pool3.extraction.listing`, which decides what each entry is.
"""

from __future__ import annotations

import logging
import os
import stat as st
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs

from pool3.storage.files import Root

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    parts: tuple[str, ...]  # path components below the root
    fs_path: str
    size: int
    kind: str  # "file", "special"


def walk_local(root: Root, unlisted: list[str]) -> Iterator[Entry]:
    """Entries under a local folder (in no particular order), following links like
    ``find -L`` (a link that leads back into its own ancestors is a loop, not followed)."""
    first = os.stat(root.fs_path)
    stack: list[tuple[str, tuple[str, ...], frozenset[tuple[int, int]]]] = [
        (root.fs_path, (), frozenset({(first.st_dev, first.st_ino)}))
    ]
    while stack:
        folder, parts, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as err:
            unlisted.append(f"{printable(root.uri_of(folder))} ({err.strerror or err})")
            log.warning("cannot list folder %r: %s; its files are not read", folder, err)
            continue
        for entry in entries:
            sub = (*parts, entry.name)
            try:
                info = entry.stat(follow_symlinks=True)
            except OSError:  # a broken or looping link: a file as far as the name goes
                yield Entry(sub, entry.path, 0, "file")
                continue
            if st.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    log.warning("not following %r: a link back into its own folder", entry.path)
                    continue
                stack.append((entry.path, sub, ancestors | {key}))
            elif st.S_ISREG(info.st_mode):
                yield Entry(sub, entry.path, info.st_size, "file")
            else:
                yield Entry(sub, entry.path, 0, "special")


def walk_remote(root: Root, unlisted: list[str]) -> Iterator[Entry]:
    """Entries under a folder of HDFS or an object store: one recursive listing, or folder
    by folder where that fails (so one unreadable folder costs only its own files)."""
    fs = root.filesystem()
    base = root.fs_path.rstrip("/")

    def entries(infos: list[pafs.FileInfo]) -> Iterator[Entry]:
        for info in infos:
            if info.type == pafs.FileType.Directory:
                continue
            parts = tuple(info.path[len(base) + 1 :].split("/"))
            kind = "file" if info.type == pafs.FileType.File else "special"
            yield Entry(parts, info.path, int(info.size or 0), kind)

    try:
        yield from entries(fs.get_file_info(pafs.FileSelector(base, recursive=True)))
        return
    except OSError as err:
        log.info("recursive listing of %s failed (%s); listing folder by folder", root.uri, err)
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            infos = fs.get_file_info(pafs.FileSelector(folder, recursive=False))
        except OSError as err:
            unlisted.append(f"{root.uri_of(folder)} ({err})")
            log.warning("cannot list folder %s: %s; its files are not read", folder, err)
            continue
        stack.extend(i.path for i in infos if i.type == pafs.FileType.Directory)
        yield from entries(infos)


def printable(text: str) -> str:
    """``text`` (a local name decoded with surrogate escapes) as valid UTF-8: bytes that are
    not UTF-8 shown as ``\\xNN``; unchanged for every name that is UTF-8."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
