"""Where a run's files go: local paths and URIs (`s3://`, `gs://`, `abfs://`, ...) through `pyarrow.fs`.

A location is a string, a local path or a URI; `resolve` is the one place that turns it into a
(filesystem, path) pair, so a URI is never taken for a local folder named `s3:`. The driver, the
teacher actors, Ray Data's readers and Ray Train's checkpoints all go through it.

S3-compatible servers (MinIO, Ceph, moto) are reached by setting `AWS_ENDPOINT_URL` (pyarrow reads
it, like the AWS CLI); credentials come from the usual AWS variables or the node's role.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.fs as pafs

__all__ = [
    "TEMP_PREFIX",
    "WORKER_ENV",
    "check_location",
    "exists",
    "glob",
    "is_dir",
    "is_uri",
    "join",
    "list_files",
    "local_dir",
    "location_in",
    "make_dir",
    "publish",
    "read_bytes",
    "resolve",
    "staging_dir",
    "worker_env",
    "write_whole",
]

TEMP_PREFIX = ".tmp-"

# What pyarrow's S3 client reads from the environment. A driver that joins a running cluster
# passes these to its job's workers, which would otherwise lack the endpoint of a MinIO-like
# server (a local cluster started by the driver inherits them anyway).
WORKER_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def is_uri(location: str | Path) -> bool:
    return isinstance(location, str) and "://" in location and not location.startswith("file://")


def resolve(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it); a local path becomes absolute."""
    if not is_uri(location):
        text = str(location).removeprefix("file://")
        return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())
    return pafs.FileSystem.from_uri(str(location))


def join(location: str | Path, *parts: str) -> str:
    if is_uri(location):
        return posixpath.join(str(location).rstrip("/"), *parts)
    return str(Path(location, *parts))


def exists(location: str | Path) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(location: str | Path) -> bool:
    fs, path = resolve(location)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def make_dir(location: str | Path) -> None:
    fs, path = resolve(location)
    fs.create_dir(path, recursive=True)


def list_files(location: str | Path) -> list[pafs.FileInfo]:
    """The files directly in a directory (none when it does not exist), by name."""
    fs, path = resolve(location)
    found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted((f for f in found if f.type == pafs.FileType.File), key=lambda f: f.base_name)


def glob(location: str | Path, pattern: str) -> list[str]:
    """Locations of the files below `location` whose path relative to it matches `pattern`
    (fnmatch, so `*` also crosses `/`), sorted; one listing request on object storage."""
    fs, root = resolve(location)
    found = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True, recursive=True))
    relative = sorted(posixpath.relpath(f.path, root) for f in found if f.type == pafs.FileType.File)
    return [join(location, r) for r in relative if fnmatch.fnmatchcase(r, pattern)]


def location_in(location: str | Path, path: str) -> str:
    """The location of `path`, a path below `location` inside the filesystem it resolves to
    (what Ray Train reports for a checkpoint): a URI for a URI, the absolute path otherwise."""
    if not is_uri(location):
        return path
    return join(location, posixpath.relpath(path, resolve(location)[1]))


def read_bytes(location: str | Path) -> bytes:
    fs, path = resolve(location)
    if fs.get_file_info(path).type != pafs.FileType.File:
        raise FileNotFoundError(f"{location} does not exist")
    with fs.open_input_stream(path) as f:
        return f.read()


def write_whole(fs: pafs.FileSystem, path: str, data: bytes | pa.Buffer) -> None:
    """Writes `data` so that readers see the whole file or none of it.

    On a local disk: a hidden temp file (`TEMP_PREFIX`) renamed into place. On object storage a
    rename is a copy, but a single upload is atomic: the object appears only once the upload
    completes, and a writer killed before that leaves nothing. The data is in memory already, so
    one write and one close make that upload.
    """
    if fs.type_name == "local":
        directory, name = posixpath.split(path)
        tmp = posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{name}")
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)
        return
    stream = fs.open_output_stream(path)
    stream.write(data)
    stream.close()


def staging_dir(location: str) -> Path:
    """A local folder for the driver's own files of a run at URI `location` (reports, metrics,
    curves), copied there by `publish`. Fixed per URI, so a rerun on the same machine keeps the
    metrics of a student it resumes."""
    scheme, rest = location.split("://", 1)
    return Path(tempfile.gettempdir(), f"raykd-staging-{os.getuid()}", scheme, *[p for p in rest.split("/") if p not in ("", ".", "..")])


def publish(local_dir: Path, location: str) -> None:
    """Copies every file under `local_dir` to the directory at `location` (which may be local)."""
    fs, path = resolve(location)
    if fs.type_name == "local" and Path(path) == local_dir.resolve():
        return
    pafs.copy_files(str(local_dir.resolve()), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


@contextmanager
def local_dir(location: str | Path) -> Iterator[Path]:
    """The directory at `location` as a local folder, for readers that take paths only (Hugging
    Face's `from_pretrained`): the path itself, or for a URI a private copy removed on exit (each
    reader its own, so actors on one node never see another's half-written copy)."""
    if not is_uri(location):
        yield Path(resolve(location)[1])
        return
    fs, path = resolve(location)
    with tempfile.TemporaryDirectory(prefix="raykd-fetch-") as tmp:
        pafs.copy_files(path, tmp, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        yield Path(tmp)


def worker_env() -> dict[str, str]:
    return {key: os.environ[key] for key in WORKER_ENV if key in os.environ}


def check_location(location: str) -> str | None:
    """Why `location` cannot hold a run (None when it can): an unknown scheme, a filesystem
    pyarrow lacks, a server that does not answer or refuses the credentials, a missing bucket,
    or a file where the directory should be. Object storage is asked once; nothing is written."""
    if not is_uri(location):
        return "is a file, not a directory" if Path(location).expanduser().is_file() else None
    scheme = location.split("://", 1)[0]
    try:
        fs, path = resolve(location)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as err:
        return f"cannot be opened by pyarrow.fs ({_first_line(err)}); use a local path or a URI pyarrow supports (s3://, gs://, abfs://)"
    bucket = path.split("/", 1)[0]
    hint = "set AWS_ENDPOINT_URL for an S3-compatible server (MinIO), and credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or a node role)"
    try:
        if fs.type_name != "local" and fs.get_file_info(bucket).type == pafs.FileType.NotFound:
            return f"names bucket {bucket!r}, which does not exist on that {scheme} server; create it first"
        if fs.get_file_info(path).type == pafs.FileType.File:
            return "is a file, not a directory"
    except OSError as err:
        return f"cannot be reached ({_first_line(err)}); {hint if scheme == 's3' else 'check the credentials for ' + scheme}"
    return None


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
