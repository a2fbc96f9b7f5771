"""Datasets: the embedded digits, user Parquet, deterministic splits."""

from raykd.data.digits import DIGITS_FEATURES, DIGITS_IMAGE_SHAPE, digits_table
from raykd.data.inputs import (
    DEFAULT_ID_COLUMN,
    InputSpec,
    Inputs,
    parquet_files,
    parquet_fragments,
    read_inputs,
    resolve_inputs,
    split_inputs,
    to_numpy,
)
from raykd.data.splits import SPLITS, split_codes
from raykd.data.tabular import breast_cancer_table, write_breast_cancer_parquet

__all__ = [
    "DEFAULT_ID_COLUMN",
    "DIGITS_FEATURES",
    "DIGITS_IMAGE_SHAPE",
    "InputSpec",
    "Inputs",
    "SPLITS",
    "breast_cancer_table",
    "digits_table",
    "parquet_files",
    "parquet_fragments",
    "read_inputs",
    "resolve_inputs",
    "split_codes",
    "split_inputs",
    "to_numpy",
    "write_breast_cancer_parquet",
]
