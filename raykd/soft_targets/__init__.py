"""Soft targets: teacher actor pool, top-k codec, Parquet schema, resumable part store, reader."""

from raykd.soft_targets.actor import TeacherActor
from raykd.soft_targets.codec import decode_topk, encode_topk, index_dtype
from raykd.soft_targets.encoders import PartEncoder, TopKEncoder
from raykd.soft_targets.pipeline import SoftTargetRun, generate_parts, generate_soft_targets
from raykd.soft_targets.reader import join_with_inputs, read_soft_targets
from raykd.soft_targets.schema import SoftTargetMeta, teacher_fingerprint
from raykd.soft_targets.store import (
    IdTally,
    drop_written,
    list_parts,
    read_ids,
    read_parts,
    shuffle_partitions,
    stored_bytes,
    tally_ids,
    validate_exactly_once,
)

__all__ = [
    "IdTally",
    "PartEncoder",
    "TeacherActor",
    "TopKEncoder",
    "generate_parts",
    "SoftTargetMeta",
    "SoftTargetRun",
    "decode_topk",
    "drop_written",
    "encode_topk",
    "generate_soft_targets",
    "index_dtype",
    "join_with_inputs",
    "list_parts",
    "read_ids",
    "read_parts",
    "read_soft_targets",
    "shuffle_partitions",
    "stored_bytes",
    "tally_ids",
    "teacher_fingerprint",
    "validate_exactly_once",
]

from raykd.soft_targets.pseudo_label import (
    PSEUDO_LABEL_COLUMNS,
    PSEUDO_LABEL_FORMAT,
    PseudoLabelEncoder,
    pseudo_label_stats,
    read_pseudo_labels,
    select_pseudo_labels,
    with_accepted,
)

__all__ += [
    "PSEUDO_LABEL_COLUMNS",
    "PSEUDO_LABEL_FORMAT",
    "PseudoLabelEncoder",
    "pseudo_label_stats",
    "read_pseudo_labels",
    "select_pseudo_labels",
    "with_accepted",
]
