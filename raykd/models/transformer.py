"""A sentence-embedding student cut from its transformer teacher ("copy student").

The student keeps the teacher's width, heads and tokenizer, so its pooled embedding is compared
with the teacher's directly (no projection) and its attention maps line up head for head. It is
small because it keeps only a few of the teacher's blocks and factorises the word embeddings:
vocab × E, then E → hidden (ALBERT's factorised embedding, Lan et al. 2020), which is where most
of a small BERT's parameters sit (30522 × 384 of MiniLM's 22.7 M).

Initialisation from the teacher: the factorised embeddings from a PCA of the teacher's word
embeddings (low = centred rows projected on the top-E principal directions, up = those directions
plus the mean, so up(low(t)) is the teacher's embedding of t up to the dropped components); the
position (first `max_positions`), token-type and embedding LayerNorm weights and the chosen
blocks (`layers`) copied. On MiniLM-L6 (blocks 4, 5; E=64) that is 5,578,368 parameters, 0.246
of the teacher's 22.7 M; `pipelines/transformer_distill.py` measures what it reaches.

Inputs are the token ids padded with the tokenizer's pad id (an int (B, L) batch column `x`);
the attention mask is recomputed from them, and columns that are padding in every row are cut
(`token_inputs`), the same way the Transformer teacher does, so both sides see the same length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.tokens import mean_pool, token_inputs

__all__ = ["CopyTransformer"]


class CopyTransformer(nn.Module):
    """A BERT encoder of `len(layers)` of the teacher's blocks over factorised word embeddings.

    Output: `logits` and `features["embedding"]` = the mean-pooled last hidden state (B, hidden),
    as the Transformer teacher's bare-encoder output; with `hidden_states=True` the token states
    (embeddings + one per block), with `attentions=True` one (B, heads, T, T) map per block (eager
    attention, slower). Off, a layer-mapped loss reads the pooled embedding as the only layer, which
    is what stored teacher embeddings are compared with.

    `in_features` is the padded sequence length of the inputs and `num_classes` the embedding
    width (the teacher's hidden size), the names every raykd model spec uses for its sizes. With
    `head` it is a text classifier: `logits` come from a linear layer of `num_classes` outputs on
    the pooled embedding (which stays `features["embedding"]`).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        teacher_dir: str | None = None,
        layers: Sequence[int] = (4, 5),
        embedding_dim: int = 64,
        max_positions: int = 128,
        hidden_states: bool = False,
        attentions: bool = False,
        standardize: bool = False,
        head: bool = False,
    ) -> None:
        super().__init__()
        import transformers

        if standardize:
            raise ValueError("CopyTransformer takes token ids, which are not standardized; set data standardize off")
        if teacher_dir is None:
            from raykd.teachers.transformer import packaged_minilm_dir  # the bundled MiniLM, found at call time

            teacher_dir = str(packaged_minilm_dir())
        directory = Path(teacher_dir)
        teacher_cfg = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
        layers = [int(i) for i in layers]
        depth = teacher_cfg.num_hidden_layers
        if not layers or any(not 0 <= i < depth for i in layers):
            raise ValueError(f"CopyTransformer layers must be teacher blocks in 0..{depth - 1}, got {layers}")
        if not head and num_classes != teacher_cfg.hidden_size:
            raise ValueError(f"CopyTransformer's embedding width is the teacher's hidden size {teacher_cfg.hidden_size}, got num_classes={num_classes}")
        if not 1 <= embedding_dim <= teacher_cfg.hidden_size:
            raise ValueError(f"CopyTransformer embedding_dim must be in 1..{teacher_cfg.hidden_size}, got {embedding_dim}")
        if not in_features <= max_positions <= teacher_cfg.max_position_embeddings:
            raise ValueError(
                f"CopyTransformer max_positions must hold the inputs' {in_features} tokens and at most the teacher's "
                f"{teacher_cfg.max_position_embeddings}, got {max_positions}"
            )
        config = transformers.BertConfig(
            vocab_size=1,  # the word embeddings are the factorised pair below
            hidden_size=teacher_cfg.hidden_size,
            num_hidden_layers=len(layers),
            num_attention_heads=teacher_cfg.num_attention_heads,
            intermediate_size=teacher_cfg.intermediate_size,
            max_position_embeddings=max_positions,
            type_vocab_size=teacher_cfg.type_vocab_size,
            layer_norm_eps=teacher_cfg.layer_norm_eps,
            hidden_act=teacher_cfg.hidden_act,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            pad_token_id=0,
        )
        config._attn_implementation = "eager" if attentions else "sdpa"  # only eager returns attention maps
        self.bert = transformers.BertModel(config, add_pooling_layer=False)
        self.low = nn.Embedding(teacher_cfg.vocab_size, embedding_dim)
        self.up = nn.Linear(embedding_dim, teacher_cfg.hidden_size)
        self.pad_token_id = int(teacher_cfg.pad_token_id if teacher_cfg.pad_token_id is not None else 0)
        self.hidden_states, self.attentions = hidden_states, attentions
        self.in_features, self.num_classes = in_features, num_classes
        self.classifier = nn.Linear(teacher_cfg.hidden_size, num_classes) if head else None
        self.feature_layers: list[str] = []  # hidden states and attentions come in the output
        self._copy_from(directory, layers, embedding_dim, max_positions)

    @torch.no_grad()
    def _copy_from(self, directory: Path, layers: list[int], embedding_dim: int, max_positions: int) -> None:
        import transformers

        teacher = transformers.AutoModel.from_pretrained(directory, local_files_only=True)
        words = teacher.embeddings.word_embeddings.weight.float()
        mean = words.mean(0)
        _, _, directions = torch.linalg.svd(words - mean, full_matrices=False)
        basis = directions[:embedding_dim].T  # (hidden, E)
        self.low.weight.copy_((words - mean) @ basis)
        self.up.weight.copy_(basis)
        self.up.bias.copy_(mean)
        mine, theirs = self.bert.embeddings, teacher.embeddings
        mine.position_embeddings.weight.copy_(theirs.position_embeddings.weight[:max_positions])
        mine.token_type_embeddings.weight.copy_(theirs.token_type_embeddings.weight)
        mine.LayerNorm.load_state_dict(theirs.LayerNorm.state_dict())
        for k, i in enumerate(layers):
            self.bert.encoder.layer[k].load_state_dict(teacher.encoder.layer[i].state_dict())

    def forward(self, x: torch.Tensor) -> ModelOutput:
        batch = token_inputs(x, self.pad_token_id)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        out = self.bert(
            inputs_embeds=self.up(self.low(ids)),
            attention_mask=mask,
            token_type_ids=torch.zeros_like(ids),
            output_hidden_states=self.hidden_states,
            output_attentions=self.attentions,
            return_dict=True,
        )
        pooled = mean_pool(out.last_hidden_state, mask)
        return ModelOutput(
            logits=self.classifier(pooled) if self.classifier is not None else pooled,
            features={"embedding": pooled},
            hidden_states=tuple(out.hidden_states) if self.hidden_states else None,
            attentions=tuple(out.attentions) if self.attentions else None,
        )
