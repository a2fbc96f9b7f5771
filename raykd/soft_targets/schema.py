"""The soft-target Parquet schema and its metadata (what teacher, how many classes, which k).

One row per input id:

| column | type | holds |
|---|---|---|
| `id` | int64 | the input's id (unique over the directory) |
| `topk_values` | fixed_size_list<float16>[k] | the teacher's raw logits at its k largest classes, largest first |
| `topk_indices` | fixed_size_list<uint8/16/32>[k] | those classes (smallest type that holds C - 1) |
| `logsumexp` | float32 | log Σ_c exp(z_c) over all C raw logits (for residual decoding) |
| `logits` | fixed_size_list<float32>[C] | optional (`full_logits=True`): every raw logit |
| `features` | fixed_size_list<float16>[d] | optional (`feature=NAME`): one teacher feature, flattened |

Every file's schema metadata holds `SoftTargetMeta` as JSON under `raykd.soft_targets`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from torch import nn

__all__ = ["SoftTargetMeta", "FORMAT_VERSION", "to_table", "teacher_fingerprint", "check_k", "METADATA_KEY"]

FORMAT_VERSION = "1"
METADATA_KEY = _KEY = b"raykd.soft_targets"


@dataclass(frozen=True)
class SoftTargetMeta:
    """Stored as JSON under the `raykd.soft_targets` key of every file's schema metadata."""

    teacher: dict[str, Any]
    teacher_hash: str
    num_classes: int
    k: int
    logits: str = "raw"  # values are temperature-free logits; apply T when decoding
    full_logits: bool = False
    """Also store every class's logit (float32) in a `logits` column."""
    feature: str | None = None
    """Also store this teacher feature, flattened, as a float16 `features` column."""
    views: dict[str, Any] | None = None
    """The `raykd.data.augment.ViewSpec` when rows are augmented views (keyed by view id), so a
    directory never mixes plain and view parts, or views of two specs."""
    format_version: str = FORMAT_VERSION

    def __post_init__(self) -> None:
        # Fail here, on the driver, before any Ray work starts.
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"soft_targets.num_classes must be an integer >= 2, got {self.num_classes!r}")
        check_k(self.k, self.num_classes)
        if self.logits != "raw":
            raise ValueError(f"soft_targets.logits must be 'raw' (temperature-free logits), got {self.logits!r}")

    def to_metadata(self) -> dict[bytes, bytes]:
        return {_KEY: json.dumps(asdict(self), sort_keys=True).encode()}

    def identity(self) -> dict[str, Any]:
        """What must match for two runs' parts to share a directory."""
        return {k: v for k, v in asdict(self).items() if k != "teacher"}

    @classmethod
    def from_schema(cls, schema: pa.Schema, where: str) -> "SoftTargetMeta":
        raw = (schema.metadata or {}).get(_KEY)
        if raw is None:
            raise ValueError(f"{where} is not a raykd soft-target file (no {_KEY.decode()} schema metadata)")
        return cls(**json.loads(raw))


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """(B, n) array -> Arrow fixed-size lists of n, without copying the values."""
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).reshape(-1)), values.shape[1])


def to_table(
    ids: np.ndarray, values: np.ndarray, indices: np.ndarray, meta: SoftTargetMeta, extras: dict[str, np.ndarray] | None = None
) -> pa.Table:
    """Columns `id`, `topk_values` (float16), `topk_indices` (smallest int type), then any of
    `logsumexp` (float32), `logits` (float32, all classes), `features` (float16)."""
    columns = {"id": pa.array(ids, type=pa.int64()), "topk_values": _fixed_list(values), "topk_indices": _fixed_list(indices)}
    for name, array in (extras or {}).items():
        columns[name] = _fixed_list(array) if array.ndim == 2 else pa.array(array)
    return pa.table(columns).replace_schema_metadata(meta.to_metadata())


def check_k(k: int, num_classes: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= num_classes:
        raise ValueError(f"soft_targets.k must be in [1, num_classes={num_classes}], got {k!r}")
    return int(k)


def teacher_fingerprint(model: nn.Module) -> str:
    """sha256 over parameter and buffer names and bytes: two teachers match only if weights do."""
    import torch  # here: the store's tasks read metadata from this module and need no torch

    digest = hashlib.sha256()

    def add(value: object) -> None:
        if isinstance(value, torch.Tensor):
            value = value.dequantize() if value.is_quantized else value
            digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        elif isinstance(value, (tuple, list)):  # quantized modules keep packed (weight, bias) pairs
            for item in value:
                add(item)
        else:
            digest.update(repr(value).encode())

    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        add(value)
    return digest.hexdigest()
