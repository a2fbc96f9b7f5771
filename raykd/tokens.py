"""Padded token-id batches, shared by the Transformer teacher and the transformer students.

Text travels through Ray Data as one int column `x` (B, L): token ids padded with the tokenizer's
pad id, so the soft-target actors and the Ray Train loop handle it like any other input. Both
sides rebuild the attention mask from the ids and cut the columns that are padding in every row:
a batch of short sentences then costs its longest sentence, not the padded length, and teacher and
student see the same positions (their attention maps and token states line up).
"""

from __future__ import annotations

import torch

__all__ = ["mean_pool", "token_inputs"]


def token_inputs(x: torch.Tensor, pad_token_id: int) -> dict[str, torch.Tensor]:
    """`input_ids` (long) and `attention_mask` (1 = real token) of padded ids (B, L), cut after
    the last column that holds a real token in any row."""
    ids = x.long()
    mask = (ids != pad_token_id).long()
    used = mask.any(0).nonzero()
    length = int(used.max()) + 1 if len(used) else 1
    return {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]}


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of token states over real tokens: (B, T, H), (B, T) -> (B, H) (sentence-transformers' pooling)."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)  # (B, T, 1)
    return (last_hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
