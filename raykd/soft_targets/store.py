"""A directory of soft-target part files: atomic writes, resume bookkeeping, exact-once checks.

Each part is named by a hash of the ids it holds and written to a hidden temp file first, then
renamed. A retried batch therefore lands on the same name (no duplicate rows) and a killed
writer leaves no partial part behind, only a hidden temp file that readers ignore.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raykd.soft_targets.schema import METADATA_KEY, SoftTargetMeta

__all__ = [
    "COMPRESSIONS",
    "part_name",
    "write_part",
    "list_parts",
    "remove_temp_files",
    "read_meta",
    "read_identity",
    "read_ids",
    "check_compatible",
    "validate_exactly_once",
]

PART_GLOB = "part-*.parquet"
TEMP_GLOB = ".tmp-*.parquet"
COMPRESSIONS = ("zstd", "lz4", "snappy", "none")


def part_name(ids: np.ndarray) -> str:
    return f"part-{hashlib.sha1(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()[:20]}.parquet"


def write_part(table: pa.Table, directory: str | Path, compression: str = "zstd") -> Path:
    """Writes `table` as one part named by its ids: to a hidden temp file, then renamed.

    Dictionary encoding is off: soft-target columns are dense numbers, where it costs write time
    and, here, also bytes.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"soft_targets.compression must be one of {COMPRESSIONS}, got {compression!r}")
    directory = Path(directory)
    final = directory / part_name(table.column("id").to_numpy())
    tmp = directory / f".tmp-{uuid.uuid4().hex}.parquet"
    pq.write_table(table, tmp, compression=compression, use_dictionary=False)
    os.replace(tmp, final)
    return final


def remove_temp_files(directory: str | Path) -> int:
    """Deletes the hidden temp files that killed writers left behind; returns how many."""
    removed = 0
    for tmp in Path(directory).glob(TEMP_GLOB):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def list_parts(directory: str | Path) -> list[Path]:
    return sorted(Path(directory).glob(PART_GLOB))


def _first_schema(directory: str | Path) -> tuple[Path, pa.Schema] | None:
    parts = list_parts(directory)
    if not parts:
        return None
    try:
        return parts[0], pq.read_schema(parts[0])
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"soft-target file {parts[0]} is corrupt ({err}); delete it and rerun to regenerate it") from err


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
    chunks = []
    for part in list_parts(directory):
        try:
            chunks.append(pq.read_table(part, columns=["id"]).column("id").to_numpy())
        except (pa.ArrowInvalid, OSError) as err:
            raise ValueError(f"soft-target file {part} is corrupt ({err}); delete it and rerun to regenerate it") from err
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


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
