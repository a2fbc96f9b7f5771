"""Deterministic train/val/test assignment from the sample id alone.

A split that depends only on (id, seed) needs no global shuffle, so every Ray Data block can be
split independently and the same id lands in the same split on every run and every machine.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPLITS", "mix64", "split_codes"]

SPLITS = ("train", "val", "test")


def mix64(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64's finaliser over (value, seed): consecutive values map to unrelated uint64s."""
    x = values.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def split_codes(ids: np.ndarray, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """0 = train, 1 = val, 2 = test for each id, from a 64-bit mix of (id, seed)."""
    u = (mix64(ids, seed) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    codes = np.zeros(len(ids), dtype=np.int8)
    codes[u >= 1.0 - val_fraction - test_fraction] = 1
    codes[u >= 1.0 - test_fraction] = 2
    return codes
