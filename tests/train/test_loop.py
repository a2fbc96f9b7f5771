"""Pure-torch pieces of the student loop: batch loss, evaluation, early stopping, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from raykd.models import build_model
from raykd.strategies import build
from raykd.train import EarlyStopping, default_ce_weight, evaluate, load_student, save_student, student_loss
from raykd.train.checkpoint import load_training_state

SPEC = {"type": "mlp", "in_features": 4, "hidden": [8], "num_classes": 3}


def _batch(n=6):
    g = torch.Generator().manual_seed(0)
    return {"id": torch.arange(n), "x": torch.randn(n, 4, generator=g), "label": torch.tensor([0, 1, 2, 0, 1, 2][:n])}


def test_baseline_loss_is_cross_entropy():
    torch.manual_seed(0)
    model, batch = build_model(SPEC), _batch()
    expected = torch.nn.functional.cross_entropy(model(batch["x"]), batch["label"])
    torch.testing.assert_close(student_loss(model, None, batch, 3)["loss"], expected)


def test_kd_loss_reads_top_k_columns_as_teacher_logits():
    torch.manual_seed(0)
    model, batch = build_model(SPEC), _batch()
    teacher_logits = torch.tensor([[2.0, 0.5, -1.0]]).repeat(6, 1)
    batch["topk_values"] = teacher_logits[:, :2].half()
    batch["topk_indices"] = torch.tensor([[0, 1]], dtype=torch.uint8).repeat(6, 1)
    strategy = build("ResponseBased", temperature=2.0, alpha=1.0)
    loss = student_loss(model, strategy, batch, 3)["loss"]
    # Hand computation: the teacher keeps classes 0 and 1 only (renormalised), KL at T=2 times T².
    p0 = math.exp(1.0) / (math.exp(1.0) + math.exp(0.25))
    p_t = [p0, 1 - p0]
    s = torch.log_softmax(model(batch["x"]).detach() / 2.0, dim=-1)
    expected = sum(
        sum(p * (math.log(p) - float(s[i, c])) for c, p in enumerate(p_t)) for i in range(6)
    ) / 6 * 4.0
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_evaluate_counts_accuracy_and_loss_over_batches():
    model = torch.nn.Identity()
    batches = [
        {"x": torch.tensor([[5.0, 0.0], [0.0, 5.0]]), "label": torch.tensor([0, 0])},
        {"x": torch.tensor([[0.0, 5.0]]), "label": torch.tensor([1])},
    ]
    result = evaluate(model, batches)
    acc, loss = result["accuracy"], result["loss"]
    assert acc == pytest.approx(2 / 3)
    # ECE: all three predictions have confidence sigmoid(5) ≈ 0.9933, so one bin holds them all
    # and ECE = |mean confidence − accuracy|.
    confidence = 1 / (1 + math.exp(-5))
    assert result["ece"] == pytest.approx(abs(confidence - 2 / 3), rel=1e-5)
    ce_right, ce_wrong = math.log(1 + math.exp(-5)), math.log(1 + math.exp(5))
    assert loss == pytest.approx((2 * ce_right + ce_wrong) / 3, rel=1e-5)


def test_cross_entropy_is_added_only_at_its_weight():
    torch.manual_seed(0)
    model, batch = build_model(SPEC), _batch()
    batch["topk_values"] = torch.tensor([[2.0, 0.5, -1.0]]).repeat(6, 1).half()
    batch["topk_indices"] = torch.tensor([[0, 1, 2]], dtype=torch.uint8).repeat(6, 1)
    strategy = build("ResponseBased", temperature=2.0, alpha=1.0)
    alone = student_loss(model, strategy, batch, 3)
    assert set(alone) == {"loss", "distill", "agreement", "student_logits"}
    both = student_loss(model, strategy, batch, 3, ce_weight=0.5)
    ce = torch.nn.functional.cross_entropy(model(batch["x"]), batch["label"])
    torch.testing.assert_close(both["loss"], alone["distill"] + 0.5 * ce)
    assert default_ce_weight(strategy) == 0.0
    assert default_ce_weight(build("SimilarityPreserving")) == 1.0
    assert default_ce_weight(None) == 1.0


def test_early_stopping_state_survives_a_checkpoint(tmp_path):
    stopper = EarlyStopping(min_delta=0.01, patience=3)
    for score in [0.5, 0.6, 0.6, 0.6]:
        stopper.step(score)
    save_student(tmp_path, build_model(SPEC), SPEC, {"epoch": 3, "early_stopping": stopper.state_dict()})
    _, state = load_student(tmp_path)
    resumed = EarlyStopping(min_delta=0.01, patience=3)
    resumed.load_state_dict(state["early_stopping"])
    assert (resumed.best, resumed.stale_epochs) == (0.6, 2)
    assert resumed.step(0.6) is True  # the third stale epoch in a row, counted across the restart


def test_early_stopping_waits_patience_epochs_beyond_min_delta():
    stopper = EarlyStopping(min_delta=0.01, patience=2)
    assert [stopper.step(s) for s in [0.5, 0.7, 0.705, 0.709, 0.8, 0.8]] == [False, False, False, True, False, False]
    with pytest.raises(ValueError, match=r"patience must be >= 1, got 0"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match=r"min_delta must be >= 0"):
        EarlyStopping(min_delta=-1)


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    torch.manual_seed(0)
    model = build_model(SPEC)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    save_student(tmp_path, model, SPEC, {"epoch": 3, "val_accuracy": 0.5}, optimizer)
    loaded, state = load_student(tmp_path)
    assert state["epoch"] == 3 and state["spec"] == SPEC
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert "state" in load_training_state(tmp_path)["optimizer"]
    with pytest.raises(FileNotFoundError, match="not a raykd student checkpoint"):
        load_student(tmp_path / "elsewhere")


def test_residual_decode_spreads_the_missing_mass_over_the_other_classes():
    torch.manual_seed(0)
    model, batch = build_model(SPEC), _batch()
    full = torch.tensor([[2.0, 0.5, -1.0]]).repeat(6, 1)
    batch["topk_values"] = full[:, :1].half()
    batch["topk_indices"] = torch.zeros(6, 1, dtype=torch.uint8)
    batch["logsumexp"] = torch.logsumexp(full, dim=1)
    strategy = build("ResponseBased", temperature=1.0, alpha=1.0)
    loss = student_loss(model, strategy, batch, 3, decode="residual")["loss"]
    # At T=1 the residual decode gives class 0 its true probability and splits the rest evenly.
    p0 = math.exp(2.0) / sum(math.exp(v) for v in (2.0, 0.5, -1.0))
    p_t = [p0, (1 - p0) / 2, (1 - p0) / 2]
    s = torch.log_softmax(model(batch["x"]).detach(), dim=-1)
    expected = sum(sum(p * (math.log(p) - float(s[i, c])) for c, p in enumerate(p_t)) for i in range(6)) / 6
    assert float(loss) == pytest.approx(expected, rel=1e-3)


def test_an_embedding_batch_reads_stored_features_and_gets_its_attention_mask():
    """Text batches: `x` padded ids, `features` the teacher's stored embedding, no labels; a
    strategy that takes an attention mask gets the one rebuilt from the ids."""
    from raykd.outputs import ModelOutput
    from raykd.train import evaluate_embedding
    from raykd.train.loop import stored_teacher_output

    seen = {}

    class Strategy(torch.nn.Module):
        requires = frozenset({"hidden_states"})

        def forward(self, student, teacher, labels=None, attention_mask=None):
            seen.update(labels=labels, mask=attention_mask, teacher=teacher)
            return (student.logits - teacher.logits).pow(2).mean()

    class Student(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)

        def forward(self, x):
            return ModelOutput(logits=self.embed(x.long()).mean(1))

    torch.manual_seed(0)
    x = torch.tensor([[5, 6, 0, 0], [7, 0, 0, 0]], dtype=torch.int32)
    features = torch.randn(2, 4).half()
    batch = {"id": torch.arange(2), "x": x, "features": features}
    parts = student_loss(Student(), Strategy(), batch, 4, pad_token_id=0)
    assert seen["labels"] is None and "agreement" not in parts and "ce" not in parts
    assert seen["mask"].tolist() == [[1, 1], [1, 0]]  # padding columns shared by every row are cut
    torch.testing.assert_close(seen["teacher"].features["embedding"], features.float())
    assert stored_teacher_output(batch, 4, "renormalize").logits.dtype == torch.float32
    student = Student()
    expected = torch.nn.functional.cosine_similarity(student(x).logits, features.float()).mean()
    got = evaluate_embedding(student, [{"x": x[:1], "features": features[:1]}, {"x": x[1:], "features": features[1:]}])
    assert got["cosine"] == pytest.approx(float(expected), rel=1e-6)
