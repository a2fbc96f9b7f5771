"""Reference models: stored input standardization and data-shaped default architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raykd.models import MLP, SmallCNN, build_model, default_student, default_teacher_members, feature_stats, set_input_stats
from raykd.teachers.checkpoint import MemberCheckpoint, load_members, save_members


def _data(n: int = 64, features: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * np.logspace(-2, 3, features) + np.linspace(-50, 50, features)
    x[:, 0] = 0.0  # a constant column, like the digits' corner pixels
    return x.astype(np.float32)


def test_feature_stats_pass_constant_columns_through():
    x = _data()
    mean, std = feature_stats(x)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (16,)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std[1:], x[:, 1:].astype(np.float64).std(0), rtol=1e-5)
    assert std[0] == 1.0
    with pytest.raises(ValueError, match="non-empty"):
        feature_stats(np.zeros((0, 3)))


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "mlp", "in_features": 16, "hidden": [8, 4], "num_classes": 3},
        {"type": "cnn", "in_features": 16, "channels": [4], "num_classes": 3},
    ],
)
def test_standardize_matches_a_manual_computation(spec):
    torch.manual_seed(0)
    x = _data()
    model = build_model({**spec, "standardize": True}).eval()
    plain = build_model(spec).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("input_")})
    mean, std = feature_stats(x)
    assert torch.equal(model(torch.as_tensor(x)), plain(torch.as_tensor(x)))  # identity until stats are set
    set_input_stats(model, mean, std)
    expected = plain(torch.as_tensor((x - mean) / std))
    torch.testing.assert_close(model(torch.as_tensor(x)), expected)
    assert model.feature_layers == plain.feature_layers
    assert {"input_mean", "input_std"} <= set(dict(model.named_buffers()))
    assert not any(name.startswith("input_") for name, _ in model.named_parameters())


def test_without_standardize_the_state_dict_is_unchanged():
    mlp = build_model({"type": "mlp", "in_features": 16, "hidden": [8], "num_classes": 3, "standardize": False})
    assert list(mlp.state_dict()) == ["body.layer1.0.weight", "body.layer1.0.bias", "head.weight", "head.bias"]
    cnn = build_model({"type": "cnn", "in_features": 16, "channels": [4], "num_classes": 3})
    assert list(cnn.state_dict()) == list(SmallCNN(16, [4], 3).state_dict())
    assert not any(k.startswith("input_") for k in cnn.state_dict())
    with pytest.raises(ValueError, match=r'built without input standardization.*"standardize": true'):
        set_input_stats(mlp, *feature_stats(_data()))


def test_set_input_stats_checks_the_feature_count():
    model = MLP(16, [8], 3, standardize=True)
    with pytest.raises(ValueError, match=r"takes 16 features"):
        set_input_stats(model, np.zeros(4), np.ones(4))


def test_stats_survive_a_teacher_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    x = _data()
    members = []
    for name, spec in [
        ("mlp", {"type": "mlp", "in_features": 16, "hidden": [8], "num_classes": 3, "standardize": True}),
        ("cnn", {"type": "cnn", "in_features": 16, "channels": [4], "num_classes": 3, "standardize": True}),
    ]:
        model = set_input_stats(build_model(spec), *feature_stats(x)).eval()
        members.append(MemberCheckpoint(name, spec, model))
    save_members(tmp_path, members)
    loaded, _ = load_members(tmp_path)
    for before, after in zip(members, loaded):
        after.model.eval()
        torch.testing.assert_close(after.model.input_mean, before.model.input_mean)
        torch.testing.assert_close(after.model.input_std, before.model.input_std)
        torch.testing.assert_close(after.model(torch.as_tensor(x)), before.model(torch.as_tensor(x)))


def test_defaults_follow_the_shape_of_the_data():
    flat = default_teacher_members(None)
    assert len(flat) == 3 and all(m["type"] == "mlp" for m in flat)
    assert len({tuple(m["hidden"]) for m in flat}) == 3  # diverse members
    assert default_student(None) == {"type": "mlp", "hidden": [64], "standardize": True}
    image = default_teacher_members((8, 8))
    assert [m["type"] for m in image] == ["cnn", "cnn", "mlp"]
    assert default_student((8, 8)) == {"type": "mlp", "hidden": [256], "standardize": True}
    assert all(m["type"] == "mlp" for m in default_teacher_members((4, 16)))  # SmallCNN needs a square
    for spec in [*flat, *image, default_student(None)]:
        assert spec["standardize"] is True and "in_features" not in spec and "num_classes" not in spec
    flat[0]["hidden"].append(1)
    assert default_teacher_members(None)[0]["hidden"] == [256, 128]  # callers get copies
    for spec in [*default_teacher_members((8, 8)), default_student((8, 8))]:
        model = build_model({**spec, "in_features": 64, "num_classes": 10})
        assert model(torch.zeros(2, 64)).shape == (2, 10)


def test_fit_classifier_trains_a_model_that_returns_a_model_output():
    from raykd.models.fit import fit_classifier, predict_logits
    from raykd.outputs import ModelOutput

    class Wrapped(torch.nn.Module):  # like copy_transformer(head=true): logits inside a ModelOutput
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> ModelOutput:
            return ModelOutput(logits=self.linear(x))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = fit_classifier(Wrapped(), x, y, epochs=20, lr=0.05)
    assert (predict_logits(model, x).argmax(1).numpy() == y).mean() > 0.9
