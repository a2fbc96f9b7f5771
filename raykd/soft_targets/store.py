"""A directory of soft-target part files: atomic writes, resume bookkeeping, exact-once checks.

Each part is named by a hash of the ids it holds and written to a hidden temp file first, then
renamed. A retried batch therefore lands on the same name (no duplicate rows) and a killed
writer leaves no partial part behind, only a hidden temp file that readers ignore.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raykd.soft_targets.schema import SoftTargetMeta

__all__ = ["part_name", "write_part", "list_parts", "read_meta", "read_ids", "check_compatible", "validate_exactly_once"]

PART_GLOB = "part-*.parquet"


def part_name(ids: np.ndarray) -> str:
    return f"part-{hashlib.sha1(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()[:20]}.parquet"


def write_part(table: pa.Table, directory: str | Path) -> Path:
    directory = Path(directory)
    final = directory / part_name(table.column("id").to_numpy())
    tmp = directory / f".tmp-{uuid.uuid4().hex}.parquet"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
    return final


def list_parts(directory: str | Path) -> list[Path]:
    return sorted(Path(directory).glob(PART_GLOB))


def read_meta(directory: str | Path) -> SoftTargetMeta | None:
    parts = list_parts(directory)
    if not parts:
        return None
    try:
        schema = pq.read_schema(parts[0])
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"soft-target file {parts[0]} is corrupt ({err}); delete it and rerun to regenerate it") from err
    return SoftTargetMeta.from_schema(schema, str(parts[0]))


def read_ids(directory: str | Path) -> np.ndarray:
    """Every id in every part (duplicates kept, so callers can detect them)."""
    chunks = []
    for part in list_parts(directory):
        try:
            chunks.append(pq.read_table(part, columns=["id"]).column("id").to_numpy())
        except (pa.ArrowInvalid, OSError) as err:
            raise ValueError(f"soft-target file {part} is corrupt ({err}); delete it and rerun to regenerate it") from err
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


def check_compatible(directory: str | Path, meta: SoftTargetMeta) -> None:
    """Refuse to mix targets of different teachers (or k) in one directory."""
    existing = read_meta(directory)
    if existing is None:
        return
    if existing.teacher_hash != meta.teacher_hash or existing.k != meta.k or existing.num_classes != meta.num_classes:
        raise ValueError(
            f"{directory} already holds soft targets of a different teacher or format "
            f"(teacher hash {existing.teacher_hash[:12]} k={existing.k} classes={existing.num_classes}, "
            f"this run: {meta.teacher_hash[:12]} k={meta.k} classes={meta.num_classes}); refusing to mix them. "
            "Start fresh by deleting that directory or choose another --output."
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
