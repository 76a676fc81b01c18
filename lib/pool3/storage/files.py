"""Input files by URI, read where they are used: resolve, stat, list and read through pyarrow.fs.

Featurize and classify list their input on the driver and read each file's bytes in the
Python worker that decodes it, with the same module on both sides. No JVM is involved, so
the input side works the same in classic Spark and over Spark Connect, and nothing in a
file's name is ever parsed as a Hadoop path or glob (``:``, ``[``, ``{``, ``*``, ``?``,
``#``, ``%``, newlines are ordinary characters; a name is never percent-decoded).

URIs and their file systems: a local path, ``file:/x`` or ``file:///x`` (local; relative
paths made absolute); ``hdfs://nn:8020/x``, ``hdfs:///x`` (``HadoopFileSystem`` through
libhdfs, needing ``JAVA_HOME``, ``HADOOP_HOME`` and ``CLASSPATH=$(hadoop classpath --glob)``
on the driver and every worker; no host: ``fs.defaultFS``); ``s3a://b/k``, ``s3://b/k``
(``S3FileSystem``, AWS default credential chain, ``AWS_ENDPOINT_URL`` for other stores);
``gs://b/k``; ``abfs(s)://container@account.dfs.core.windows.net/k``.

Rows name files as Hadoop does (``file:/data/a b.jpg``, ``hdfs://nn:8020/x/a.jpg``,
``s3a://b/k/a.jpg``): the input's own scheme and authority, then the path, unencoded.

Reading never raises for one file (:func:`read_file`): a file that is gone, unreadable or
changed since it was listed gives ``(None, "<category>: <detail>")``, with category one of
:data:`READ_CATEGORIES`, and the row of that file records it.

Size (over ~300 lines): resolving a URI and reading one file by it are one contract that
the driver and the workers share; kept together so that both read files the same way.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

import pyarrow.fs as pafs

from pool3.errors import ConfigError, InputError

MISSING = "missing"
"""Listed, then gone when read: deleted or moved during the run, or a broken symbolic link."""
UNREADABLE = "unreadable"
"""Present but not readable: permissions, I/O errors, a folder where a file was listed."""
CHANGED = "changed"
"""Its size when read differs from its size when listed: rewritten during the run."""
READ_CATEGORIES = (MISSING, UNREADABLE, CHANGED)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
#: scheme -> the scheme pyarrow knows it by
_PYARROW_SCHEME = {
    "hdfs": "hdfs",
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "gs": "gs",
    "gcs": "gs",
    "abfs": "abfs",
    "abfss": "abfss",
}
_HINTS = {
    "hdfs": "pyarrow reads HDFS through libhdfs: set JAVA_HOME, HADOOP_HOME and "
    "CLASSPATH=$(hadoop classpath --glob) on the driver and every worker (docs/cluster.md)",
    "s3": "check the AWS credentials and region (AWS_* variables, profile or instance role) "
    "and AWS_ENDPOINT_URL for a non-AWS store",
}
#: Reads of one file tried this many times on errors that may pass (I/O, throttling).
READ_ATTEMPTS = 3


@dataclass(frozen=True)
class Root:
    """Where an input lives: its URI as rows name it and its path for pyarrow's file system.

    Small and picklable (it travels to the workers); :meth:`filesystem` builds the file
    system once per process.
    """

    uri: str  # e.g. "file:/data/photos", "s3a://bucket/photos"
    fs_path: str  # e.g. "/data/photos", "bucket/photos"
    scheme: str  # "file", "hdfs", "s3a", ...
    resolver: str  # the file system's key: "" (local), "hdfs://host:port", "s3://bucket"

    @property
    def local(self) -> bool:
        return self.scheme == "file"

    def filesystem(self) -> pafs.FileSystem:
        return _filesystem(self.resolver)

    def uri_of(self, fs_path: str) -> str:
        """The row URI of a path under this root (as the file system names it)."""
        if fs_path == self.fs_path:
            return self.uri
        rest = fs_path[len(self.fs_path) :] if fs_path.startswith(self.fs_path) else None
        if rest is None or (rest[:1] != "/" and not self.fs_path.endswith("/")):
            raise ValueError(f"{fs_path!r} is not under {self.fs_path!r}")
        return self.uri.rstrip("/") + "/" + rest.lstrip("/")

    def fs_path_of(self, uri: str) -> str:
        """The file system path of a row URI under this root."""
        if uri == self.uri:
            return self.fs_path
        base = self.uri.rstrip("/") + "/"
        if not uri.startswith(base):
            raise ValueError(f"{uri!r} is not under {self.uri!r}")
        return self.fs_path.rstrip("/") + "/" + uri[len(base) :]


#: file systems built on this process (driver or worker), by resolver URI
_FILESYSTEMS: dict[str, pafs.FileSystem] = {}


class FileSystemUnavailable(ConfigError):
    """The input's file system cannot be built here (client library, credentials)."""


def _filesystem(resolver: str) -> pafs.FileSystem:
    """The file system of a resolver key (``""``, ``hdfs://host:port``, ``s3://bucket``...),
    built once per process. Raises FileSystemUnavailable: a worker that cannot reach the
    store fails its task (and the job, with this message) instead of giving every file an
    error row."""
    fs = _FILESYSTEMS.get(resolver)
    if fs is not None:
        return fs
    scheme = resolver.partition("://")[0]
    try:
        if not resolver:
            fs = pafs.LocalFileSystem()
        elif scheme == "hdfs":
            host, _, port = resolver[len("hdfs://") :].partition(":")
            fs = pafs.HadoopFileSystem(host or "default", int(port) if port else 0)
        else:
            fs = pafs.FileSystem.from_uri(resolver)[0]
    except (OSError, ValueError) as err:
        hint = _HINTS.get(scheme, "check the URI and the credentials")
        raise FileSystemUnavailable(
            f"cannot open the file system {resolver} on {os.uname().nodename}: {err}; {hint}"
        ) from err
    _FILESYSTEMS[resolver] = fs
    return fs


def _split(uri: str) -> tuple[str, str, str] | None:
    """``(scheme, authority, path)`` of a URI pool3 reads, None for a local path.

    The path is kept literally (no ``?`` query, ``#`` fragment or ``%`` decoding): a name
    is a name. ``hdfs:/x`` (one slash) is HDFS with the default name node.
    """
    match = _SCHEME.match(uri)
    if match is None:
        return None
    scheme, rest = match.group(1).lower(), uri[match.end() :]
    if scheme != "file" and scheme not in _PYARROW_SCHEME:
        if rest.startswith("//"):
            raise ConfigError(
                f"cannot read {uri!r}: pool3 reads images from local paths, file://, hdfs://, "
                f"s3a:// (s3://), gs:// and abfs(s):// URIs, not {scheme}://; copy the data "
                "to one of those or mount it"
            )
        return None  # a local name holding a colon: "a:b.jpg"
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        return scheme, authority, slash + path
    return scheme, "", rest


def is_uri(path: str) -> bool:
    """Whether ``path`` names its scheme (``file:``, ``hdfs:``, ``s3a:``...)."""
    return _split(path) is not None


def resolve(uri: str) -> Root:
    """The :class:`Root` of a path or URI; ConfigError for a scheme pool3 cannot read.

    A path without scheme is local (callers with a Spark session qualify it against
    ``fs.defaultFS`` first, see :func:`pool3.extraction.listing.list_input`). Building the
    file system (network clients, libhdfs) happens here, so a missing client library on
    the driver is reported before any work, naming what to install or set.
    """
    if not uri.strip():
        raise ConfigError("the input path is empty; give a folder, a file or a URI")
    parts = _split(uri)
    if parts is None or parts[0] == "file":
        path = uri if parts is None else parts[2]
        if parts is not None and parts[1] not in ("", "localhost"):
            raise ConfigError(
                f"{uri!r} names host {parts[1]!r}; local file URIs take no host: write "
                "file:///path (or a plain path), or use hdfs:// or s3a://"
            )
        path = os.path.abspath(path) if path else os.getcwd()
        path = "/" + path.lstrip("/")  # POSIX keeps a leading "//": "//data" is "/data"
        if path != "/":
            path = path.rstrip("/")
        return Root(uri="file:" + path, fs_path=path, scheme="file", resolver="")
    scheme, authority, path = parts
    kind = _PYARROW_SCHEME[scheme]
    path = "/" + path.strip("/") if path.strip("/") else ""
    if kind == "hdfs":
        resolver, fs_path = f"hdfs://{authority}", path or "/"
    else:
        if not authority:
            raise ConfigError(f"{uri!r} names no bucket or container; write {scheme}://NAME/path")
        resolver = f"{kind}://{authority}"
        # pyarrow's path starts with the bucket (s3, gs) or the container (abfs: c@account)
        fs_path = authority.partition("@")[0] + path
    _filesystem(resolver)
    return Root(
        uri=f"{scheme}://{authority}{path}", fs_path=fs_path, scheme=scheme, resolver=resolver
    )


def same_store(a: Root, b: Root) -> bool:
    """Whether two roots are on one file system (``s3`` = ``s3a``; an HDFS name node with
    and without its port, or the default one, count as the same)."""
    if _PYARROW_SCHEME.get(a.scheme, a.scheme) != _PYARROW_SCHEME.get(b.scheme, b.scheme):
        return False
    host_a, host_b = (r.resolver.partition("://")[2] for r in (a, b))
    if a.scheme == "hdfs" and (not host_a or not host_b):
        return True
    if a.scheme == "hdfs":
        return host_a.partition(":")[0] == host_b.partition(":")[0]
    return host_a == host_b


def stat(root: Root, *, shown: str | None = None) -> pafs.FileInfo:
    """The input root's FileInfo; InputError if it does not exist or cannot be read.

    ``shown`` is the path as the user gave it, for the message (default: the root's URI).
    """
    name = root.uri if shown is None else shown
    hint = (
        "check the path; on a cluster a local path must exist on every node "
        "(use hdfs://, s3a:// or a shared mount)"
    )
    try:
        info = root.filesystem().get_file_info(root.fs_path)
    except OSError as err:
        raise InputError(f"cannot read input {name!r}: {err}; {hint}") from err
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"input {name!r} does not exist; {hint}")
    return info


def read_file(
    root: Root, uri: str, listed_length: int, *, max_bytes: int
) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` or ``(None, "<category>: <detail>")`` for one listed file.

    Never raises for a file's own trouble: gone since listing (``missing``), not readable
    (``unreadable``), a size other than the listed one (``changed``), or above
    ``max_bytes`` (``too_large``, decided from the listed size without reading). Errors
    that may pass (I/O, a throttled store) are retried :data:`READ_ATTEMPTS` times. Raises
    FileSystemUnavailable only when the store cannot be reached from this process at all.
    """
    if listed_length > max_bytes:
        return None, too_large_error(listed_length, max_bytes)
    fs = root.filesystem()
    try:
        path = root.fs_path_of(uri)
    except ValueError as err:
        return None, f"{UNREADABLE}: {err}"
    error = f"{UNREADABLE}: no attempt made"
    for attempt in range(READ_ATTEMPTS):
        try:
            return _read_once(fs, path, listed_length)
        except FileNotFoundError:
            return None, (
                f"{MISSING}: the file no longer exists (deleted or moved after it was "
                "listed, or a broken symbolic link)"
            )
        except PermissionError as err:
            return None, f"{UNREADABLE}: permission denied ({err.strerror or err})"
        except OSError as err:
            error = f"{UNREADABLE}: {_short(err)}"
            settled = _settled(fs, path)
            if settled is not None:
                return None, settled
        except Exception as err:  # anything else about this one file: its row says so
            return None, f"{UNREADABLE}: {type(err).__name__}: {err}"
        if attempt + 1 < READ_ATTEMPTS:
            time.sleep(0.2 * 5**attempt)
    return None, error + f" (after {READ_ATTEMPTS} attempts)"


def too_large_error(length: int, max_bytes: int) -> str:
    """The ``too_large`` error of a file of ``length`` bytes (never read)."""
    return (
        f"too_large: file is {length / (1 << 20):.1f} MB, above "
        f"max_file_mb={max_bytes / (1 << 20):.0f}"
    )


def _read_once(
    fs: pafs.FileSystem, path: str, listed_length: int
) -> tuple[bytes | None, str | None]:
    with fs.open_input_file(path) as stream:
        size = stream.size()
        if size != listed_length:
            return None, (
                f"{CHANGED}: listed with {listed_length} bytes, {size} bytes when read "
                "(the file was rewritten during the run; rerun to read the new version)"
            )
        data: bytes = stream.read()
    if len(data) != listed_length:
        return None, (
            f"{CHANGED}: listed with {listed_length} bytes, {len(data)} bytes read "
            "(the file changed while it was read; rerun to read it again)"
        )
    return data, None


def _settled(fs: pafs.FileSystem, path: str) -> str | None:
    """The error of a failed read that retrying cannot change (gone, a folder now), or None."""
    try:
        info = fs.get_file_info(path)
    except Exception:
        return None
    if info.type == pafs.FileType.NotFound:
        return f"{MISSING}: the file no longer exists (deleted or moved after it was listed)"
    if info.type == pafs.FileType.Directory:
        return f"{UNREADABLE}: a folder now has this name (it was a file when listed)"
    return None


def _short(err: BaseException) -> str:
    text = str(err)
    if "Detail:" in text:  # pyarrow: "[Errno 40] Failed to open ... Detail: [errno 40] ..."
        text = text.split("Detail:", 1)[1].strip()
    return text or type(err).__name__
