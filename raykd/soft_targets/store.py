"""A directory of soft-target part files: atomic writes, resume bookkeeping, exact-once checks.

The directory is a local path or a URI (`raykd.storage`). Each part is named by a hash of the ids
it holds and appears whole or not at all (`storage.write_whole`: a renamed temp file on disk, a
single upload on object storage). A retried batch therefore lands on the same name (no duplicate
rows) and a killed writer leaves no partial part behind, at most a hidden temp file that readers
ignore.

The bookkeeping runs as Ray work, so the driver's memory does not grow with the number of ids:
each part's `id` column is its manifest, read in Ray tasks; `tally_ids` counts every id over the
inputs and the parts with one hash shuffle of the ids, bringing back only counts and a few example
ids; `drop_written` removes the written ids from the inputs by a hash anti-join. The driver holds
the part listing (one entry per batch) and object references, not the ids.
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raykd import storage
from raykd.shuffle import block_partitions, split_by_key
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
    "IdTally",
    "ROWS_PER_PARTITION",
    "part_dataset",
    "shuffle_partitions",
    "drop_written",
    "tally_ids",
    "validate_exactly_once",
]

COMPRESSIONS = ("zstd", "lz4", "snappy", "none")

# Rows per hash partition of every join and group-by by id here (the resume anti-join, the
# exact-once tally, soft targets ⋈ inputs, pseudo-labels ⋈ unlabeled inputs): 1M ids are 8 MB,
# and a joined partition with features stays a few hundred MB for one reduce task.
ROWS_PER_PARTITION = 1_000_000
# Parts whose id columns one Ray task reads: a task per part would cost more than the read.
PARTS_PER_TASK = 64
EXAMPLES = 5
_KINDS = ("missing", "duplicated", "unexpected", "input_duplicates")


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
    """Every id in every part (duplicates kept, so callers can detect them), on the caller: for
    tests and small directories; the stage itself uses `tally_ids` and `drop_written`."""
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


def shuffle_partitions(rows: int) -> int:
    """Hash partitions for a join or group-by over `rows` rows: one per `ROWS_PER_PARTITION`, so a
    partition's memory stays the same however many rows there are (the one rule for all of them)."""
    return max(1, math.ceil(rows / ROWS_PER_PARTITION))


def _read_part_files(paths: list[str], directory: str, columns: list[str] | None) -> pa.Table:
    """`columns` (or all) of the parts at `paths` (inside `directory`'s filesystem), in one table."""
    fs, _ = storage.resolve(directory)
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path, columns=columns, filesystem=fs))
        except (pa.ArrowInvalid, OSError) as err:
            raise _corrupt(directory, fs.get_file_info(path), err) from err
    return pa.concat_tables(tables)


def _part_chunks(directory: str | Path) -> list[list[str]]:
    paths = [p.path for p in list_parts(directory)]
    return [paths[i : i + PARTS_PER_TASK] for i in range(0, len(paths), PARTS_PER_TASK)]


def _split_parts(paths: list[str], directory: str, partitions: int) -> pa.Table | list[pa.Table]:
    return split_by_key(_read_part_files(paths, directory, ["id"]), partitions)


def _ids(tables: tuple[pa.Table, ...]) -> np.ndarray:
    return np.concatenate([np.zeros(0, dtype=np.int64), *(t.column("id").to_numpy() for t in tables)])


def _count_partition(expected_sources: int, *tables: pa.Table) -> dict:
    """One partition's counts: the first `expected_sources` tables hold input ids, the rest part ids."""
    want, want_n = np.unique(_ids(tables[:expected_sources]), return_counts=True)
    written = _ids(tables[expected_sources:])
    got, got_n = np.unique(written, return_counts=True)
    faults = {
        "missing": np.setdiff1d(want, got, assume_unique=True),
        "duplicated": got[got_n > 1],
        "unexpected": np.setdiff1d(got, want, assume_unique=True),
        "input_duplicates": want[want_n > 1],
    }
    return {"written": len(written), **{k: (len(v), v[:EXAMPLES].tolist()) for k, v in faults.items()}}


def _drop_written(input_sources: int, *tables: pa.Table) -> pa.Table:
    """One partition's input rows (the first `input_sources` tables) whose id no part holds (the rest)."""
    rows = pa.concat_tables(tables[:input_sources])
    return rows.filter(pa.array(~np.isin(rows.column("id").to_numpy(), _ids(tables[input_sources:]))))


def _part_task(fn, directory: str | Path, num_returns: int = 1):
    """`fn` as a Ray task that reads parts of `directory`. The readers carry the driver's
    object-storage settings (endpoint, credentials), as a run's job does (`storage.worker_env`):
    a driver that joined a cluster started without them can still read a bucket."""
    import ray

    reader_env = {"env_vars": storage.worker_env()} if storage.is_uri(directory) and storage.worker_env() else None
    return ray.remote(fn).options(num_returns=num_returns, runtime_env=reader_env)


def part_dataset(directory: str | Path, columns: list[str] | None = None):
    """The parts' rows (`columns` of them, or all) as a Ray Dataset, read in Ray tasks of
    `PARTS_PER_TASK` parts each. Plain tasks rather than `ray.data.read_parquet`, which starts
    actors to read footers (a process each) before it reads a row."""
    import ray.data

    read = _part_task(_read_part_files, directory)
    return ray.data.from_arrow_refs([read.remote(chunk, str(directory), columns) for chunk in _part_chunks(directory)])


def _shuffle(ds, directory: str | Path, partitions: int, reduce, columns: list[str] | None) -> list:
    """References to `reduce(n, *tables)` run once per hash partition, in Ray tasks
    (`raykd.shuffle`), over that partition's rows of `ds` (its first n tables; `columns` of them,
    or all) and of the parts' ids in `directory` (the rest)."""
    import ray

    split_parts = _part_task(_split_parts, directory, partitions)
    per_source = block_partitions(ds, partitions, "id", columns)
    from_inputs = len(per_source)
    per_source += [s if isinstance(s, list) else [s] for s in (split_parts.remote(chunk, str(directory), partitions) for chunk in _part_chunks(directory))]
    task = ray.remote(reduce)
    return [task.remote(from_inputs, *(refs[p] for refs in per_source)) for p in range(partitions)]


def drop_written(inputs, directory: str | Path, rows: int):
    """The rows of `inputs` (`rows` of them) whose id is in no part of `directory`, as a
    materialized Ray Dataset: a hash anti-join in Ray tasks (see `_shuffle`)."""
    import ray.data

    return ray.data.from_arrow_refs(_shuffle(inputs, directory, shuffle_partitions(rows), _drop_written, None))


@dataclass(frozen=True)
class IdTally:
    """Counts from `tally_ids`, with the smallest few ids of each fault for error messages."""

    written: int
    missing: int
    duplicated: int
    unexpected: int
    input_duplicates: int
    examples: dict[str, list[int]]

    def check(self, directory: str | Path) -> int:
        """Raises unless every expected id is in exactly one part row and no other id is; returns the rows."""
        if self.missing or self.duplicated or self.unexpected:
            e = self.examples
            raise ValueError(
                f"soft targets in {directory} are not exact: {self.missing} ids missing, {self.duplicated} duplicated, "
                f"{self.unexpected} unexpected (e.g. missing {e['missing']}, duplicated {e['duplicated']}, "
                f"unexpected {e['unexpected']}); rerun to fill missing ids, or delete the directory to start fresh"
            )
        return self.written


def tally_ids(expected, directory: str | Path, expected_rows: int) -> IdTally:
    """Counts each id of `expected` (a Ray Dataset with an `id` column, `expected_rows` rows) and of
    the parts in `directory` by a hash shuffle of the ids in Ray tasks (see `_shuffle`); the
    driver gets a few numbers per partition back."""
    import ray

    summaries = ray.get(_shuffle(expected, directory, shuffle_partitions(expected_rows), _count_partition, ["id"]))
    examples = {k: sorted(i for s in summaries for i in s[k][1])[:EXAMPLES] for k in _KINDS}
    counts = {k: sum(s[k][0] for s in summaries) for k in _KINDS}
    return IdTally(written=sum(s["written"] for s in summaries), examples=examples, **counts)


def validate_exactly_once(directory: str | Path, expected) -> int:
    """Raises unless every expected id appears exactly once and no other id appears; returns the
    rows. `expected`: a Ray Dataset with an `id` column (counted in Ray), or an array of ids."""
    import ray.data

    if isinstance(expected, np.ndarray):
        expected = ray.data.from_arrow(pa.table({"id": np.asarray(expected, dtype=np.int64)}))
    return tally_ids(expected, directory, expected.count()).check(directory)
