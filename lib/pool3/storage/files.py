"""Input files by URI, read where they are used: resolve, stat, list and read through pyarrow.fs.

Featurize and classify list their input on the driver and read each file's bytes in the
Python worker that decodes it, with the same module on both sides. No JVM is involved, so
the input side works the same in classic Spark and over Spark Connect, and nothing in a
file's name is ever parsed as a Hadoop path or glob (``:``, ``[``, ``{``, ``*``, ``?``,
``#``, ``%``, newlines are ordinary characters; a name is never percent-decoded).

URIs and their file systems
    ===========================  =========================================================
    ``/data/x``, ``data/x``      the local file system (a relative path is made absolute)
    ``file:/data/x``,            the local file system
    ``file:///data/x``
    ``hdfs://nn:8020/x``         ``pyarrow.fs.HadoopFileSystem`` (libhdfs: needs
    ``hdfs:///x``                ``JAVA_HOME``, ``HADOOP_HOME`` and ``CLASSPATH=$(hadoop
                                 classpath --glob)`` on the driver and every worker;
                                 ``hdfs:///`` uses ``fs.defaultFS``)
    ``s3a://b/k``, ``s3://b/k``  ``pyarrow.fs.S3FileSystem`` (credentials and region from the
                                 AWS default chain: ``AWS_*`` variables, profile, instance
                                 role; ``AWS_ENDPOINT_URL`` for other S3 stores)
    ``gs://b/k``                 ``pyarrow.fs.GcsFileSystem``
    ``abfs://``, ``abfss://``    ``pyarrow.fs.AzureFileSystem``
    ===========================  =========================================================

Rows name files as Hadoop does (``file:/data/a b.jpg``, ``hdfs://nn:8020/x/a.jpg``,
``s3a://b/k/a.jpg``): the input's own scheme and authority, then the path, unencoded.

Reading never raises for one file (:func:`read_file`): a file that is gone, unreadable or
changed since it was listed gives ``(None, "<category>: <detail>")``, with category one of
:data:`READ_CATEGORIES`, and the row of that file records it.
"""

from __future__ import annotations

import os
import re
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

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: scheme -> the scheme pyarrow's ``FileSystem.from_uri`` knows it by
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


@dataclass(frozen=True)
class Root:
    """Where an input lives: its URI as rows name it and its path for pyarrow's file system.

    Small and picklable (it travels to the workers); :meth:`filesystem` builds the file
    system once per process.
    """

    uri: str  # e.g. "file:/data/photos", "s3a://bucket/photos"
    fs_path: str  # e.g. "/data/photos", "bucket/photos"
    scheme: str  # "file", "hdfs", "s3a", ...
    resolver: str  # what FileSystem.from_uri is given ("" for the local file system)

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


def _filesystem(resolver: str) -> pafs.FileSystem:
    fs = _FILESYSTEMS.get(resolver)
    if fs is None:
        fs = pafs.LocalFileSystem() if not resolver else pafs.FileSystem.from_uri(resolver)[0]
        _FILESYSTEMS[resolver] = fs
    return fs


def resolve(uri: str) -> Root:
    """The :class:`Root` of a path or URI; ConfigError for a scheme pool3 cannot read.

    Building the file system (network clients, libhdfs) happens here too, so a missing
    client library is reported before any work, naming what to install or set.
    """
    if not uri.strip():
        raise ConfigError("the input path is empty; give a folder, a file or a URI")
    match = _SCHEME.match(uri)
    if match is None and uri.startswith("file:"):
        scheme = "file"
    else:
        scheme = match.group(1).lower() if match else "file"
    if scheme == "file":
        path = uri
        if uri.startswith("file:"):
            path = uri[len("file:") :]
            if path.startswith("//"):
                authority, _, rest = path[2:].partition("/")
                if authority not in ("", "localhost"):
                    raise ConfigError(
                        f"{uri!r} names host {authority!r}; local file URIs take no host: "
                        "write file:///path (or a plain path), or use hdfs:// or s3a://"
                    )
                path = "/" + rest
        path = os.path.abspath(path) if path else os.getcwd()
        if path != "/":
            path = path.rstrip("/")
        return Root(uri="file:" + path, fs_path=path, scheme="file", resolver="")
    if scheme not in _PYARROW_SCHEME:
        raise ConfigError(
            f"cannot read {uri!r}: pool3 reads images from local paths, file://, hdfs://, "
            f"s3a:// (s3://), gs:// and abfs(s):// URIs, not {scheme}://; copy the data to "
            "one of those or mount it"
        )
    resolver = _PYARROW_SCHEME[scheme] + uri[len(scheme) :]
    try:
        fs, fs_path = pafs.FileSystem.from_uri(resolver)
    except (OSError, ValueError) as err:
        hint = {
            "hdfs": "pyarrow reads HDFS through libhdfs: set JAVA_HOME, HADOOP_HOME and "
            "CLASSPATH=$(hadoop classpath --glob) on the driver and every worker",
            "s3": "check the AWS credentials and region (AWS_* variables, profile or "
            "instance role) and AWS_ENDPOINT_URL for a non-AWS store",
        }.get(_PYARROW_SCHEME[scheme], "check the URI and the credentials")
        raise ConfigError(f"cannot open the file system of {uri!r}: {err}; {hint}") from err
    _FILESYSTEMS.setdefault(resolver, fs)
    return Root(
        uri=uri.rstrip("/") or uri, fs_path=fs_path.rstrip("/"), scheme=scheme, resolver=resolver
    )


def stat(root: Root) -> pafs.FileInfo:
    """The input root's FileInfo; InputError if it does not exist or cannot be read."""
    hint = (
        "check the path; on a cluster a local path must exist on every node "
        "(use hdfs://, s3a:// or a shared mount)"
    )
    try:
        info = root.filesystem().get_file_info(root.fs_path)
    except OSError as err:
        raise InputError(f"cannot read input {root.uri!r}: {err}; {hint}") from err
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"input {root.uri!r} does not exist; {hint}")
    return info


def read_file(
    root: Root, uri: str, listed_length: int, *, max_bytes: int
) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` or ``(None, "<category>: <detail>")`` for one listed file.

    Never raises for a file's own trouble: gone since listing (``missing``), not readable
    (``unreadable``), a size other than the listed one (``changed``), or above
    ``max_bytes`` (``too_large``, decided from the listed size without reading).
    """
    if listed_length > max_bytes:
        return None, (
            f"too_large: file is {listed_length / (1 << 20):.1f} MB, above "
            f"max_file_mb={max_bytes / (1 << 20):.0f}"
        )
    try:
        with root.filesystem().open_input_file(root.fs_path_of(uri)) as stream:
            size = stream.size()
            if size != listed_length:
                return None, (
                    f"{CHANGED}: listed with {listed_length} bytes, {size} bytes when read "
                    "(the file was rewritten during the run; rerun to read the new version)"
                )
            data: bytes = stream.read()
    except FileNotFoundError:
        return None, (
            f"{MISSING}: the file no longer exists (deleted or moved after it was listed, "
            "or a broken symbolic link)"
        )
    except PermissionError as err:
        return None, f"{UNREADABLE}: permission denied ({err.strerror or err})"
    except OSError as err:
        return None, f"{UNREADABLE}: {_short(err)}"
    if len(data) != listed_length:
        return None, (
            f"{CHANGED}: listed with {listed_length} bytes, {len(data)} bytes read "
            "(the file changed while it was read; rerun to read it again)"
        )
    return data, None


def _short(err: BaseException) -> str:
    text = str(err)
    if "Detail:" in text:  # pyarrow: "[Errno 40] Failed to open ... Detail: [errno 40] ..."
        text = text.split("Detail:", 1)[1].strip()
    return text or type(err).__name__
