"""pool3_tools.packaging: the zip shipped with --py-files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pool3_tools import packaging


def make_package(root: Path) -> Path:
    pkg = root / "pkgdemo"
    (pkg / "sub" / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 41\n")
    (pkg / "sub" / "__init__.py").write_text("from pkgdemo import VALUE\nNEXT = VALUE + 1\n")
    (pkg / "sub" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (pkg / "stale.pyc").write_bytes(b"junk")
    (pkg / "py.typed").write_text("")
    return pkg


def test_zip_has_package_at_root_without_bytecode(tmp_path: Path) -> None:
    pkg = make_package(tmp_path)
    dest = tmp_path / "out" / "pkgdemo.zip"
    assert packaging.build_zip(dest, package_dir=pkg) is True
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left behind
    assert dest.stat().st_mode & 0o777 == 0o644
    with zipfile.ZipFile(dest) as zf:
        names = sorted(zf.namelist())
    assert names == [
        "pkgdemo/__init__.py",
        "pkgdemo/py.typed",
        "pkgdemo/sub/__init__.py",
    ]


def test_zip_is_importable_in_a_clean_interpreter(tmp_path: Path) -> None:
    dest = tmp_path / "pkgdemo.zip"
    packaging.build_zip(dest, package_dir=make_package(tmp_path / "src"))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import pkgdemo.sub as s; print(s.NEXT, s.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(dest)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["42", str(dest / "pkgdemo" / "sub" / "__init__.py")]


def test_unchanged_sources_leave_the_zip_alone(tmp_path: Path) -> None:
    pkg = make_package(tmp_path)
    dest = tmp_path / "pkgdemo.zip"
    packaging.build_zip(dest, package_dir=pkg)
    first = dest.read_bytes()
    assert packaging.build_zip(dest, package_dir=pkg) is False
    assert dest.read_bytes() == first

    (pkg / "sub" / "__init__.py").write_text("NEXT = 0\n")
    assert packaging.build_zip(dest, package_dir=pkg) is True
    with zipfile.ZipFile(dest) as zf:
        assert zf.read("pkgdemo/sub/__init__.py") == b"NEXT = 0\n"


def test_not_a_package_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"__init__\.py"):
        packaging.zip_bytes(tmp_path)
    assert packaging.main([str(tmp_path / "x.zip"), "--package-dir", str(tmp_path)]) == 2
    assert not (tmp_path / "x.zip").exists()


def test_default_zip_holds_pool3(tmp_path: Path) -> None:
    dest = tmp_path / "pool3.zip"
    assert packaging.main([str(dest)]) == 0
    with zipfile.ZipFile(dest) as zf:
        names = set(zf.namelist())
    assert {"pool3/__init__.py", "pool3/errors.py", "pool3/extraction/kernel.py"} <= names
    assert "pool3/config/profiles/local.toml" in names  # profiles travel with the code
    # driver-side tools are not shipped to executors
    assert not any(n.startswith("pool3_tools/") or n.endswith("datasets.py") for n in names)
    assert not any("__pycache__" in name for name in names)
