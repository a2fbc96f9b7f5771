"""The soft-target Parquet schema and its metadata (what teacher, how many classes, which k)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

__all__ = ["SoftTargetMeta", "FORMAT_VERSION", "soft_target_schema", "to_table", "teacher_fingerprint"]

FORMAT_VERSION = "1"
_KEY = b"raykd.soft_targets"


@dataclass(frozen=True)
class SoftTargetMeta:
    """Stored as JSON under the `raykd.soft_targets` key of every file's schema metadata."""

    teacher: dict[str, Any]
    teacher_hash: str
    num_classes: int
    k: int
    logits: str = "raw"  # values are temperature-free logits; apply T when decoding
    format_version: str = FORMAT_VERSION

    def to_metadata(self) -> dict[bytes, bytes]:
        return {_KEY: json.dumps(asdict(self), sort_keys=True).encode()}

    @classmethod
    def from_schema(cls, schema: pa.Schema, where: str) -> "SoftTargetMeta":
        raw = (schema.metadata or {}).get(_KEY)
        if raw is None:
            raise ValueError(f"{where} is not a raykd soft-target file (no {_KEY.decode()} schema metadata)")
        return cls(**json.loads(raw))


def soft_target_schema(meta: SoftTargetMeta, index_type: np.dtype) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("topk_values", pa.list_(pa.float16(), meta.k), nullable=False),
            pa.field("topk_indices", pa.list_(pa.from_numpy_dtype(index_type), meta.k), nullable=False),
        ],
        metadata=meta.to_metadata(),
    )


def to_table(ids: np.ndarray, values: np.ndarray, indices: np.ndarray, meta: SoftTargetMeta) -> pa.Table:
    k = meta.k
    schema = soft_target_schema(meta, indices.dtype)
    return pa.Table.from_arrays(
        [
            pa.array(ids, type=pa.int64()),
            pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), k),
            pa.FixedSizeListArray.from_arrays(pa.array(indices.reshape(-1)), k),
        ],
        schema=schema,
    )


def teacher_fingerprint(model: nn.Module) -> str:
    """sha256 over parameter and buffer names and bytes: two teachers match only if weights do."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
