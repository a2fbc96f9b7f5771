import math
import pickle

import pytest
import torch

from raykd import strategies
from raykd.strategies import DecoupledKD, FeatureBased, Hybrid, ResponseBased
from raykd.strategies.hybrid import weight_schedule

from .helpers import leaf, output


def _pair():
    s = output(leaf(4, 3, seed=0), {"emb": leaf(4, 5, seed=1)})
    t = output(leaf(4, 3, seed=2), {"emb": leaf(4, 5, seed=3)})
    return s, t, torch.tensor([0, 1, 2, 0])


def test_weighted_sum_of_named_and_built_components():
    s, t, y = _pair()
    fitnet = FeatureBased(weight=1.0)
    hybrid = strategies.build(
        "Hybrid",
        components=[
            {"name": "ResponseBased", "weight": 0.5, "params": {"temperature": 2.0, "alpha": 1.0}},
            {"strategy": fitnet, "weight": 3.0},
            DecoupledKD(),
        ],
        weight=2.0,
    )
    expected = 2.0 * (
        0.5 * ResponseBased(temperature=2.0, alpha=1.0)(s, t, y) + 3.0 * fitnet(s, t, y) + DecoupledKD()(s, t, y)
    )
    assert float(hybrid(s, t, y).detach()) == pytest.approx(float(expected.detach()), rel=1e-9)
    assert set(hybrid.last_losses) == {"ResponseBased", "FeatureBased", "DecoupledKD"}
    assert hybrid.requires == frozenset({"logits", "features", "labels"})


def test_schedules_follow_set_epoch_and_reach_components():
    s, t, y = _pair()
    kd = DecoupledKD(ce_weight=0.0)
    hybrid = Hybrid(
        [
            {
                "strategy": ResponseBased(alpha=1.0),
                "schedule": {"kind": "linear", "start": 0.0, "end": 1.0, "epochs": 10},
            },
            {"strategy": kd, "schedule": lambda epoch: 2.0 if epoch >= 5 else 0.0},
        ]
    )
    r = float(ResponseBased(alpha=1.0)(s, t).detach())
    assert float(hybrid(s, t, y).detach()) == pytest.approx(0.0)  # epoch 0 before any set_epoch: both weights 0
    hybrid.set_epoch(5)
    assert kd.epoch == 5
    expected = 0.5 * r + 2.0 * float(kd(s, t, y).detach())
    assert float(hybrid(s, t, y).detach()) == pytest.approx(expected, rel=1e-9)
    assert hybrid.component_weights() == {"ResponseBased": 0.5, "DecoupledKD": 2.0}


def test_weight_schedules():
    assert weight_schedule({"kind": "linear", "start": 1.0, "end": 0.0, "epochs": 4})(1) == 0.75
    assert weight_schedule({"kind": "linear", "start": 1.0, "end": 0.0, "epochs": 4})(9) == 0.0
    cosine = weight_schedule({"kind": "cosine", "start": 1.0, "end": 0.0, "epochs": 4})
    assert cosine(0) == 1.0 and cosine(2) == pytest.approx(0.5) and cosine(4) == pytest.approx(0.0)
    step = weight_schedule({"kind": "step", "start": 1.0, "end": 0.0, "at": 3})
    assert (step(2), step(3)) == (1.0, 0.0)
    assert weight_schedule({"kind": "constant", "value": 0.2})(7) == 0.2
    assert pickle.loads(pickle.dumps(step))(5) == 0.0
    with pytest.raises(ValueError, match="takes keys"):
        weight_schedule({"kind": "linear", "start": 0, "end": 1})
    with pytest.raises(ValueError, match="schedule kind must be one of"):
        weight_schedule({"kind": "exp"})
    with pytest.raises(ValueError, match="schedule.start must be a finite number >= 0"):
        weight_schedule({"kind": "step", "start": -1, "end": 0, "at": 1})


def test_keywords_go_to_the_components_that_take_them():
    s, t, y = _pair()
    hybrid = Hybrid(
        [
            {"name": "ContrastiveBased", "params": {"n_data": 8, "nce_k": 2, "feat_dim": 3}},
            {"name": "ResponseBased"},
        ]
    )
    loss = hybrid(s, t, y, index=torch.tensor([0, 1, 2, 3]))
    assert math.isfinite(float(loss.detach()))
    assert hybrid.requires == frozenset({"features", "index", "logits"})
    with pytest.raises(TypeError, match=r"no component of this Hybrid takes the keyword\(s\) \['box_mask'\]"):
        hybrid(s, t, y, index=torch.tensor([0, 1, 2, 3]), box_mask=None)


def test_zero_weight_components_are_skipped():
    s, t, _ = _pair()
    hybrid = Hybrid([{"name": "DecoupledKD", "weight": 0.0}, {"name": "ResponseBased"}])
    assert float(hybrid(s, t).detach()) == pytest.approx(float(ResponseBased()(s, t).detach()))  # DKD would need labels


def test_materialize_reaches_components_and_names_are_unique():
    s, t, _ = _pair()
    hybrid = Hybrid([{"name": "FeatureBased", "params": {"regressor": "always"}}, {"name": "FeatureBased"}])
    hybrid.materialize(s, t)
    assert len(list(hybrid.parameters())) == 2
    assert hybrid.names == ["FeatureBased_1", "FeatureBased_2"]


@pytest.mark.parametrize(
    "components,match",
    [
        ([], "non-empty list"),
        ([{"name": "ResponseBased", "wieght": 1}], r"unknown keys \['wieght'\]"),
        (
            [{"name": "ResponseBased", "weight": 1, "schedule": {"kind": "constant", "value": 1}}],
            "both 'weight' and 'schedule'",
        ),
        ([{"name": "ResponseBased", "weight": -1}], r"components\[0\].weight must be a finite number >= 0"),
        ([{"name": "Nope"}], "unknown strategy 'Nope'"),
        ([{"weight": 1.0}], "exactly one of 'name'"),
        ([{"name": "Hybrid"}], "cannot be built by name inside a Hybrid"),
        ([42], "must be a strategy module or a dict"),
    ],
)
def test_bad_components(components, match):
    with pytest.raises(ValueError, match=match):
        Hybrid(components)


def test_a_schedule_that_goes_negative_is_caught():
    s, t, _ = _pair()
    hybrid = Hybrid([{"name": "ResponseBased", "schedule": lambda epoch: -1.0}])
    with pytest.raises(ValueError, match="gave weight -1.0 at epoch 0"):
        hybrid(s, t)
