"""Build the ``pool3.zip`` that ``spark-submit --py-files`` ships to executors.

Standard library only, so that ``spark-submit.sh`` can run it as a plain script
(``python lib/pool3_tools/packaging.py build/pool3.zip``) before ``pool3`` or any of its
dependencies are importable. The archive is deterministic (sorted entries, fixed
timestamps): it is rewritten only when its bytes would change, so an unchanged
source tree keeps the same file and the same modification time.

Layout of the archive: ``pool3/__init__.py``, ``pool3/<module>.py``, ... at the
root, which is what Python's zip importer expects of a ``sys.path`` entry.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

#: The package that gets zipped (``lib/pool3``, next to this tool's ``lib/pool3_tools``).
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "pool3"

#: 1980-01-01 00:00:00, the earliest time a zip entry can carry.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = frozenset({".pyc", ".pyo"})


def iter_package_files(package_dir: Path) -> Iterator[Path]:
    """Yield the files of a package that belong in its zip, in sorted order.

    Parameters
    ----------
    package_dir : Path
        Directory of the package (it must contain ``__init__.py``).

    Yields
    ------
    Path
        Every regular file below ``package_dir``, except byte code and
        ``__pycache__`` directories.
    """
    for path in sorted(package_dir.rglob("*")):
        rel_parts = path.relative_to(package_dir).parts
        if any(part in _SKIP_DIRS for part in rel_parts):
            continue
        if path.is_file() and path.suffix not in _SKIP_SUFFIXES:
            yield path


def zip_bytes(package_dir: Path) -> bytes:
    """Return a deterministic zip of ``package_dir`` with the package at its root.

    Parameters
    ----------
    package_dir : Path
        Directory of the package, e.g. ``lib/pool3``.

    Returns
    -------
    bytes
        The archive; entries are named ``<package>/<relative path>``.

    Raises
    ------
    ValueError
        If ``package_dir`` has no ``__init__.py``.
    """
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(
            f"package_dir must be a Python package directory with an __init__.py; "
            f"got {str(package_dir)!r}. Pass the path of lib/pool3."
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in iter_package_files(package_dir):
            arcname = f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}"
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def build_zip(dest: Path, *, package_dir: Path = PACKAGE_DIR) -> bool:
    """Write the package zip to ``dest`` unless an identical one is already there.

    Parameters
    ----------
    dest : Path
        Where to write the archive, e.g. ``build/pool3.zip``; parents are created.
    package_dir : Path, optional
        Package directory to archive (default: the one holding this module).

    Returns
    -------
    bool
        True if ``dest`` was (re)written, False if it was already up to date.
    """
    data = zip_bytes(package_dir)
    if dest.is_file() and dest.read_bytes() == data:
        logger.info("%s is up to date", dest)
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name and an atomic rename: concurrent builds (parallel test
    # runs, two submissions) never see or ship a half-written zip.
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.chmod(0o644)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("wrote %s (%d bytes)", dest, len(data))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python lib/pool3_tools/packaging.py DEST [--package-dir DIR]``.

    Returns
    -------
    int
        0 on success, 2 if the package directory is not a package.
    """
    parser = argparse.ArgumentParser(description="Build the pool3 zip for --py-files.")
    parser.add_argument("dest", type=Path, help="archive to write, e.g. build/pool3.zip")
    parser.add_argument("--package-dir", type=Path, default=PACKAGE_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        build_zip(args.dest, package_dir=args.package_dir)
    except ValueError as err:
        logger.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
