"""Soft targets: teacher actor pool, top-k codec, Parquet schema, resumable part store, reader."""

from raykd.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "actor": ["TeacherActor"],
        "codec": ["decode_topk", "encode_topk", "index_dtype"],
        "encoders": ["PartEncoder", "TopKEncoder"],
        "pipeline": ["SoftTargetRun", "generate_parts", "generate_soft_targets"],
        "reader": ["join_with_inputs", "read_soft_targets"],
        "schema": ["SoftTargetMeta", "teacher_fingerprint"],
        "store": ["IdTally", "drop_written", "list_parts", "read_ids", "read_parts", "shuffle_partitions", "stored_bytes", "tally_ids", "validate_exactly_once"],
        "pseudo_label": ["PSEUDO_LABEL_COLUMNS", "PSEUDO_LABEL_FORMAT", "PseudoLabelEncoder", "pseudo_label_stats", "read_pseudo_labels", "select_pseudo_labels", "with_accepted"],
    },
)
