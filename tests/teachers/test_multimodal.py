"""MultiModal: CLIP-style contrastive logits over a dict batch; zero-shot class logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from raykd.models import MLP
from raykd.teachers import MultiModalTeacher, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

IMG = {"type": "mlp", "in_features": 12, "hidden": [16], "num_classes": 8}
TXT = {"type": "mlp", "in_features": 6, "hidden": [16], "num_classes": 8}


def towers():
    torch.manual_seed(0)
    return {"image": MLP(12, [16], 8), "text": MLP(6, [16], 8)}


def test_contrastive_logits_are_scaled_cosine_similarities():
    t = towers()
    teacher = MultiModalTeacher(t, logit_scale=10.0)
    img, txt = torch.randn(5, 12), torch.randn(5, 6)
    out = teacher.predict({"image": img, "text": txt})
    i = nn.functional.normalize(t["image"](img), dim=-1)
    x = nn.functional.normalize(t["text"](txt), dim=-1)
    torch.testing.assert_close(out.logits, 10.0 * i @ x.T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.features["logits_per_text"], out.logits.T)
    assert list(out.features)[:2] == ["image_embeds", "text_embeds"]


def test_zero_shot_classes_and_numpy_columns():
    prompts = torch.randn(3, 6)  # one text-tower input per class
    teacher = MultiModalTeacher(towers(), class_inputs=prompts)
    assert teacher.num_classes == 3
    out = teacher.predict({"image": np.random.rand(4, 12).astype(np.float32)})  # as Ray Data hands it
    assert out.logits.shape == (4, 3)


def test_bad_batches_say_what_is_missing():
    teacher = MultiModalTeacher(towers())
    with pytest.raises(ValueError, match="lacks the 'image' column"):
        teacher.predict({"text": torch.randn(2, 6)})
    with pytest.raises(ValueError, match="class_inputs="):
        teacher.predict({"image": torch.randn(2, 12)})
    with pytest.raises(TypeError, match="dict of modality columns"):
        teacher.predict(torch.randn(2, 12))


def test_from_checkpoint_towers_by_member_name(tmp_path):
    t = towers()
    save_members(tmp_path, [MemberCheckpoint("image", IMG, t["image"]), MemberCheckpoint("text", TXT, t["text"])])
    teacher = build_from_config({"kind": "MultiModal", "checkpoint": str(tmp_path), "logit_scale": 10.0})
    batch = {"image": torch.randn(3, 12), "text": torch.randn(3, 6)}
    torch.testing.assert_close(teacher.predict(batch).logits, MultiModalTeacher(t, logit_scale=10.0).predict(batch).logits)
