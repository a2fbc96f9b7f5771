"""Top-k codec: exact round trip at k = C, renormalised decode at k < C, index types, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raykd.soft_targets.codec import decode_topk, encode_topk, index_dtype


def test_index_dtype_is_the_smallest_that_fits():
    assert index_dtype(10) == np.uint8
    assert index_dtype(256) == np.uint8
    assert index_dtype(257) == np.uint16
    assert index_dtype(70_000) == np.uint32


def test_full_k_round_trips_to_the_teacher_logits():
    logits = torch.randn(16, 10) * 3
    values, indices = encode_topk(logits, k=10)
    assert values.dtype == np.float16 and indices.dtype == np.uint8
    dense = decode_topk(torch.from_numpy(values), torch.from_numpy(indices), 10)
    torch.testing.assert_close(dense, logits.half().float())


def test_top_k_keeps_the_largest_and_renormalises_over_them():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0, 0.0]])
    values, indices = encode_topk(logits, k=2)
    assert indices.tolist() == [[1, 3]]
    dense = decode_topk(torch.from_numpy(values), torch.from_numpy(indices), 5)
    probs = torch.softmax(dense / 2.0, dim=-1)
    e = np.exp([4.0 / 2, 3.0 / 2])
    torch.testing.assert_close(probs[0, [1, 3]], torch.tensor(e / e.sum(), dtype=torch.float32))
    assert probs[0, [0, 2, 4]].sum() == 0


def test_bad_k_and_nan_logits_are_refused():
    with pytest.raises(ValueError, match=r"k must be in \[1, num_classes=10\], got 11"):
        encode_topk(torch.zeros(2, 10), k=11)
    with pytest.raises(ValueError, match="NaN or inf"):
        encode_topk(torch.tensor([[0.0, float("nan")]]), k=1)
    with pytest.raises(ValueError, match=r"batch, classes"):
        encode_topk(torch.zeros(10), k=1)
