"""Text inputs: Parquet or JSON Lines files with a text column and a label, tokenised in Ray Data.

The driver checks the files before any Ray work (`scan_text`): the text, label and id columns
exist, and the labels are integers 0..C-1 (kept as they are) or strings (mapped to class ids in
sorted order, as an image folder's subfolder names). Ids come from an integer id column, or are
row positions with files in sorted path order (the scan counts each file's rows).

Ray Data then reads one file per task and tokenises in `map_batches` with the teacher's tokenizer
(loaded once per worker process): each row becomes `id`, `x` (its token ids padded with the pad id
to `max_length`, the column every text model reads, see `raykd.tokens`) and `label`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from raykd.data.inputs import InputSpec, _hidden, _id_column

__all__ = ["TextFile", "TextInputs", "class_ids", "load_tokenizer", "read_text", "scan_text", "tokenize", "with_tokenizer"]

FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}


@dataclass(frozen=True)
class TextFile:
    path: str
    format: str
    offset: int
    """Position of its first row among all files' rows (its rows' ids when ids are positions)."""
    rows: int


@dataclass(frozen=True)
class TextInputs:
    """Checked text files: what the data stage reads and the sizes the models need."""

    spec: InputSpec
    text_column: str
    files: tuple[TextFile, ...]
    classes: tuple[str, ...] | None
    """String labels' names by class id (sorted); None when the labels are integers already."""
    num_classes: int
    id_column: str | None
    max_length: int
    tokenizer_dir: str | None = None
    """The teacher's model directory, whose tokenizer makes the token ids (`with_tokenizer`)."""
    pad_token_id: int | None = None
    image_shape = None

    @property
    def positional_ids(self) -> bool:
        return self.id_column is None

    @property
    def num_features(self) -> int:
        """Tokens per row: the padded length, the student's `in_features`."""
        return self.max_length


def _files(path: Path) -> list[Path]:
    if path.is_file():
        found = [path]
    else:
        found = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix in FORMATS and not _hidden(p.relative_to(path))),
                       key=lambda p: p.relative_to(path).as_posix())  # fmt: skip
    if not found or found[0].suffix not in FORMATS:
        raise ValueError(f"data path {str(path)!r} holds no *.parquet or *.jsonl files; text inputs are Parquet or JSON Lines")
    kinds = {FORMATS[p.suffix] for p in found}
    if len(kinds) > 1:
        raise ValueError(f"data path {str(path)!r} mixes Parquet and JSON Lines files; keep one format per data set")
    return found


def _read(path: str, format: str, columns: list[str] | None = None) -> pa.Table:
    try:
        if format == "parquet":
            return pq.read_table(path, columns=columns)
        table = pajson.read_json(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path} is not readable {'Parquet' if format == 'parquet' else 'JSON Lines'} ({err}); check the file") from None
    return table.select(columns) if columns is not None else table


def class_ids(labels: pa.ChunkedArray | pa.Array, classes: tuple[str, ...] | None) -> np.ndarray:
    """Class ids of a label column: strings by their index in the sorted `classes`, integers as they are."""
    if classes is None:
        return np.asarray(labels.to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.searchsorted(np.asarray(classes, dtype=object), np.asarray(labels.to_numpy(zero_copy_only=False), dtype=object)).astype(np.int64)


def _classes(labels: list[pa.ChunkedArray], label_column: str, where: str) -> tuple[tuple[str, ...] | None, int]:
    types = {str(c.type) for c in labels}
    if all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in labels):
        names = sorted({v for c in labels for v in c.to_pylist() if v is not None})
        classes: tuple[str, ...] | None = tuple(names)
        num_classes = len(names)
    elif all(pa.types.is_integer(c.type) for c in labels):
        values = np.concatenate([c.to_numpy() for c in labels])
        if len(values) and values.min() < 0:
            raise ValueError(f"label column {label_column!r} of {where} holds negative values; integer labels must be 0..C-1")
        classes, num_classes = None, int(values.max()) + 1 if len(values) else 0
    else:
        raise ValueError(f"label column {label_column!r} of {where} must hold integers or strings in every file, got {sorted(types)}")
    if any(c.null_count for c in labels):
        raise ValueError(f"label column {label_column!r} of {where} has empty (null) labels; drop or fill those rows")
    if num_classes < 2:
        raise ValueError(f"label column {label_column!r} of {where} has fewer than 2 classes")
    return classes, num_classes


def scan_text(spec: InputSpec, text_column: str, max_length: int, limit: int | None = None) -> TextInputs:
    """Columns and labels checked from the files; errors name the file, the column and the flag."""
    path = Path(spec.path or "")
    if spec.path is None or not path.exists():
        raise ValueError(f"data.path {spec.path!r} does not exist; give --data a Parquet or JSON Lines file or directory")
    files, labels, offset, id_column = [], [], 0, None
    for file in _files(path):
        format = FORMATS[file.suffix]
        table = None if format == "parquet" else _read(str(file), format)  # JSON Lines: parsed once
        schema = pq.read_schema(file) if table is None else table.schema
        names = list(schema.names)
        if text_column not in names:
            raise ValueError(f"{file} has no text column {text_column!r} (columns: {names}); name it with --text-column (data.text_column)")
        if not (pa.types.is_string(schema.field(text_column).type) or pa.types.is_large_string(schema.field(text_column).type)):
            raise ValueError(f"text column {text_column!r} of {file} holds {schema.field(text_column).type}, not strings; name the text column with --text-column")
        if spec.label_column not in names:
            raise ValueError(f"{file} has no label column {spec.label_column!r} (columns: {names}); name it with --label-column (data.label_column)")
        id_column = _id_column(spec, schema, str(file))
        label = (_read(str(file), format, [spec.label_column]) if table is None else table).column(spec.label_column)
        rows = len(label) if limit is None else min(len(label), limit - offset)
        if rows > 0:
            files.append(TextFile(str(file.resolve()), format, offset, rows))
            labels.append(label.slice(0, rows))
        offset += rows
        if limit is not None and offset >= limit:
            break
    classes, num_classes = _classes(labels, str(spec.label_column), str(spec.path))
    return TextInputs(spec, text_column, tuple(files), classes, num_classes, id_column, max_length)


def with_tokenizer(inputs: TextInputs, directory: str) -> TextInputs:
    """The inputs tokenised by the tokenizer in `directory` (the teacher's), padded with its pad id."""
    pad = load_tokenizer(directory).pad_token_id
    if pad is None:
        raise ValueError(f"the teacher's tokenizer in {directory} has no pad token; text inputs are padded token ids")
    return replace(inputs, tokenizer_dir=directory, pad_token_id=int(pad))


@functools.lru_cache(maxsize=2)
def load_tokenizer(directory: str) -> Any:
    """A Hugging Face tokenizer from a local directory, once per process (Ray reuses workers)."""
    import transformers

    return transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)


def tokenize(batch: dict[str, np.ndarray], tokenizer_dir: str, max_length: int) -> dict[str, np.ndarray]:
    """`id`, `label` and `text` → `id`, `x` (int32 token ids padded to `max_length`), `label`."""
    tokens = load_tokenizer(tokenizer_dir)(
        [str(t) for t in batch["text"]], truncation=True, max_length=max_length, padding="max_length", return_tensors="np"
    )
    return {"id": batch["id"], "x": tokens["input_ids"].astype(np.int32), "label": batch["label"]}


def _read_files(batch: dict[str, np.ndarray], inputs: TextInputs) -> dict[str, np.ndarray]:
    """Runs in Ray Data tasks: each listed file's ids, texts and class ids."""
    parts = []
    columns = [inputs.text_column, str(inputs.spec.label_column)] + ([inputs.id_column] if inputs.id_column else [])
    for path, format, offset, rows in zip(batch["path"], batch["format"], batch["offset"], batch["rows"]):
        table = _read(str(path), str(format), columns).slice(0, int(rows))
        text = table.column(inputs.text_column)
        if text.null_count:
            raise ValueError(f"text column {inputs.text_column!r} of {path} has {text.null_count} empty (null) rows; drop or fill them")
        ids = table.column(inputs.id_column).to_numpy() if inputs.id_column else int(offset) + np.arange(table.num_rows)
        parts.append({
            "id": np.asarray(ids, dtype=np.int64),
            "text": np.asarray(text.to_pylist(), dtype=object),
            "label": class_ids(table.column(str(inputs.spec.label_column)), inputs.classes),
        })  # fmt: skip
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def read_text(inputs: TextInputs):
    """A Ray Dataset of `id`, `x` (padded token ids), `label`: one read task per file, then tokenised."""
    import ray.data

    if inputs.tokenizer_dir is None:
        raise ValueError("text inputs need the teacher's tokenizer first: raykd.data.text_inputs.with_tokenizer")
    return (
        ray.data.from_items([asdict(f) for f in inputs.files])
        .map_batches(_read_files, batch_size=1, batch_format="numpy", fn_kwargs={"inputs": inputs})
        .map_batches(tokenize, batch_format="numpy", fn_kwargs={"tokenizer_dir": inputs.tokenizer_dir, "max_length": inputs.max_length})
    )
