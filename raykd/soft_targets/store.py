"""A directory of soft-target part files: atomic writes, resume bookkeeping, exact-once checks.

The directory is a local path or a URI (`raykd.storage`). Each part is named by a hash of the ids
it holds and appears whole or not at all (`storage.write_whole`: a renamed temp file on disk, a
single upload on object storage). A retried batch therefore lands on the same name (no duplicate
rows) and a killed writer leaves no partial part behind, at most a hidden temp file that readers
ignore.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raykd import storage
from raykd.soft_targets.schema import METADATA_KEY, SoftTargetMeta

__all__ = [
    "COMPRESSIONS",
    "part_name",
    "write_part",
    "list_parts",
    "read_parts",
    "stored_bytes",
    "remove_temp_files",
    "read_meta",
    "read_identity",
    "read_ids",
    "check_compatible",
    "validate_exactly_once",
]

COMPRESSIONS = ("zstd", "lz4", "snappy", "none")


def part_name(ids: np.ndarray) -> str:
    return f"part-{hashlib.sha1(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()[:20]}.parquet"


def write_part(
    table: pa.Table, directory: str | Path, compression: str = "zstd", filesystem: pafs.FileSystem | None = None
) -> str:
    """Writes `table` as one part named by its ids, whole or not at all; returns the part's name.
    With `filesystem` (a writer that resolved its directory once), `directory` is a path in it.

    Dictionary encoding is off: soft-target columns are dense numbers, where it costs write time
    and, here, also bytes.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"soft_targets.compression must be one of {COMPRESSIONS}, got {compression!r}")
    fs, root = storage.resolve(directory) if filesystem is None else (filesystem, str(directory))
    name = part_name(table.column("id").to_numpy())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression, use_dictionary=False)
    storage.write_whole(fs, f"{root}/{name}", sink.getvalue())
    return name


def remove_temp_files(directory: str | Path) -> int:
    """Deletes the hidden temp files that killed writers left behind; returns how many."""
    fs, _ = storage.resolve(directory)
    temps = [f for f in storage.list_files(directory) if f.base_name.startswith(storage.TEMP_PREFIX)]
    for tmp in temps:
        fs.delete_file(tmp.path)
    return len(temps)


def list_parts(directory: str | Path) -> list[pafs.FileInfo]:
    """The part files, by name (`.path` is inside the directory's filesystem, `.size`, `.mtime_ns`)."""
    return [f for f in storage.list_files(directory) if f.base_name.startswith("part-") and f.base_name.endswith(".parquet")]


def _corrupt(directory: str | Path, part: pafs.FileInfo, err: Exception) -> ValueError:
    return ValueError(f"soft-target file {storage.join(directory, part.base_name)} is corrupt ({err}); delete it and rerun to regenerate it")


def read_parts(directory: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Every part's rows (of `columns`) in one table, in part-name order. Parts are read by 16
    threads: on object storage each is a request, and a resume or check reads them all."""
    fs, _ = storage.resolve(directory)
    parts = list_parts(directory)

    def read(part: pafs.FileInfo) -> pa.Table:
        try:
            return pq.read_table(part.path, columns=columns, filesystem=fs)
        except (pa.ArrowInvalid, OSError) as err:
            raise _corrupt(directory, part, err) from err

    with ThreadPoolExecutor(16) as pool:
        return pa.concat_tables(list(pool.map(read, parts)))


def stored_bytes(directory: str | Path) -> int:
    return sum(p.size for p in list_parts(directory))


def _first_schema(directory: str | Path) -> tuple[str, pa.Schema] | None:
    parts = list_parts(directory)
    if not parts:
        return None
    fs, _ = storage.resolve(directory)
    try:
        return storage.join(directory, parts[0].base_name), pq.read_schema(parts[0].path, filesystem=fs)
    except (pa.ArrowInvalid, OSError) as err:
        raise _corrupt(directory, parts[0], err) from err


def read_meta(directory: str | Path) -> SoftTargetMeta | None:
    found = _first_schema(directory)
    return None if found is None else SoftTargetMeta.from_schema(found[1], str(found[0]))


def read_identity(directory: str | Path) -> dict | None:
    """The stored metadata minus the free-form teacher description."""
    found = _first_schema(directory)
    if found is None:
        return None
    raw = (found[1].metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{found[0]} was not written by raykd (no {METADATA_KEY.decode()} metadata); use another directory")
    return {k: v for k, v in json.loads(raw).items() if k != "teacher"}


def read_ids(directory: str | Path) -> np.ndarray:
    """Every id in every part (duplicates kept, so callers can detect them)."""
    if not list_parts(directory):
        return np.zeros(0, dtype=np.int64)
    return read_parts(directory, ["id"]).column("id").to_numpy()


def check_compatible(directory: str | Path, identity: dict) -> None:
    """Refuse to mix parts of different teachers (or formats, or k) in one directory."""
    existing = read_identity(directory)
    if existing is None:
        return
    differ = {k: (existing.get(k), identity.get(k)) for k in set(existing) | set(identity) if existing.get(k) != identity.get(k)}
    if differ:
        shown = {k: (str(a)[:16], str(b)[:16]) for k, (a, b) in sorted(differ.items())}
        raise ValueError(
            f"{directory} already holds parts of a different teacher or format (stored vs this run: {shown}); "
            "refusing to mix them. Start fresh by deleting that directory or choose another --output."
        )


def validate_exactly_once(directory: str | Path, expected_ids: np.ndarray) -> int:
    """Raises unless every expected id appears exactly once and no other id appears."""
    ids = read_ids(directory)
    unique, counts = np.unique(ids, return_counts=True)
    duplicated = unique[counts > 1]
    missing = np.setdiff1d(expected_ids, unique)
    extra = np.setdiff1d(unique, expected_ids)
    if len(duplicated) or len(missing) or len(extra):
        raise ValueError(
            f"soft targets in {directory} are not exact: {len(missing)} ids missing, {len(duplicated)} duplicated, "
            f"{len(extra)} unexpected (e.g. missing {missing[:5].tolist()}, duplicated {duplicated[:5].tolist()}, "
            f"unexpected {extra[:5].tolist()}); rerun to fill missing ids, or delete the directory to start fresh"
        )
    return int(len(ids))
