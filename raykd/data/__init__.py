"""Datasets: the embedded digits, user Parquet, deterministic splits."""

from raykd.data.digits import DIGITS_FEATURES, digits_table
from raykd.data.inputs import InputSpec, Inputs, read_inputs, resolve_inputs, split_inputs, to_numpy
from raykd.data.splits import SPLITS, split_codes

__all__ = [
    "DIGITS_FEATURES",
    "InputSpec",
    "Inputs",
    "SPLITS",
    "digits_table",
    "read_inputs",
    "resolve_inputs",
    "split_codes",
    "split_inputs",
    "to_numpy",
]
