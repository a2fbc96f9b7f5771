"""Every registered strategy: a finite scalar, gradients to the student and its own modules only,
linear weight, declared needs, and clear errors for bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from raykd import strategies
from raykd.outputs import ModelOutput
from raykd.strategies import REQUIREMENTS

from .helpers import CASES, EXTRA_CASES, Case, output, tensors

ALL = [(name, name, CASES[name]) for name in strategies.available() if name in CASES] + [
    (label, name, case) for label, (name, case) in EXTRA_CASES.items()
]
IDS = [label for label, _, _ in ALL]
# Parameters that must not train during distillation (FactorTransfer's paraphraser is pre-trained, then frozen).
FROZEN_PREFIXES = ("paraphraser.",)


def test_every_registered_strategy_has_a_case():
    assert sorted(CASES) == strategies.available()


def _make(name: str, case: Case, **override):
    torch.manual_seed(0)
    student, teacher, labels, extra = case.make()
    strategy = strategies.build(name, **{**case.params, **override})
    if case.setup is not None:
        case.setup(strategy, student, teacher)
    return strategy, student, teacher, labels, extra


def _call(strategy, student, teacher, labels, extra):
    torch.manual_seed(1)  # CRD draws its negatives from the global generator
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no strategy should warn on well-formed input
        return strategy(student, teacher, labels, **extra)


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_scalar_and_declared_needs(label, name, case):
    strategy, student, teacher, labels, extra = _make(name, case)
    loss = _call(strategy, student, teacher, labels, extra)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    assert isinstance(strategy.requires, frozenset) and strategy.requires
    assert strategy.requires <= REQUIREMENTS


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_gradients_reach_student_and_own_modules_never_teacher(label, name, case):
    strategy, student, teacher, labels, extra = _make(name, case)
    loss = _call(strategy, student, teacher, labels, extra)
    loss.backward()
    student_grads = [t.grad for t in tensors(student) if t.grad is not None]
    assert student_grads and any(float(g.abs().sum()) > 0 for g in student_grads)
    assert all(t.grad is None for t in tensors(teacher))
    for pname, p in strategy.named_parameters():
        if pname.startswith(FROZEN_PREFIXES):
            assert p.grad is None, pname
        else:
            assert p.grad is not None, f"{pname} got no gradient"


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_weight_scales_linearly(label, name, case):
    one = _call(*_make(name, case, weight=1.0))
    scaled = _call(*_make(name, case, weight=2.5))
    assert float(scaled.detach()) == pytest.approx(2.5 * float(one.detach()), rel=1e-9, abs=1e-12)
    assert float(one.detach()) != 0.0


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_negative_weight_rejected(label, name, case):
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        strategies.build(name, **{**case.params, "weight": -1.0})


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_nan_in_student_rejected(label, name, case):
    strategy, student, teacher, labels, extra = _make(name, case)
    with torch.no_grad():
        for t in tensors(student):
            t.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        strategy(student, teacher, labels, **extra)


@pytest.mark.parametrize(
    "label,name,case",
    [c for c in ALL if c[1] != "SelfDistillation"],
    ids=[c[0] for c in ALL if c[1] != "SelfDistillation"],
)
def test_batch_size_mismatch_rejected(label, name, case):
    strategy, student, teacher, labels, extra = _make(name, case)
    cut = lambda t: t.detach()[:-1]  # noqa: E731
    short = ModelOutput(
        logits=cut(teacher.logits),
        features=type(teacher.features)((k, cut(v)) for k, v in teacher.features.items()),
        hidden_states=None if teacher.hidden_states is None else tuple(cut(h) for h in teacher.hidden_states),
        attentions=None if teacher.attentions is None else tuple(cut(a) for a in teacher.attentions),
    )
    with pytest.raises(ValueError, match="batch size"):
        strategy(student, short, labels, **extra)


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_materialize_builds_every_parameter_before_the_first_loss(label, name, case):
    strategy, student, teacher, labels, extra = _make(name, case)
    strategy.materialize(student, teacher)
    before = sorted(n for n, _ in strategy.named_parameters())
    _call(strategy, student, teacher, labels, extra)
    assert sorted(n for n, _ in strategy.named_parameters()) == before


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_set_epoch_is_accepted_and_validated(label, name, case):
    strategy, *_ = _make(name, case)
    strategy.set_epoch(3)
    assert strategy.epoch == 3
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        strategy.set_epoch(-1)


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match="unknown strategy 'Nope'; available: .*ResponseBased"):
        strategies.build("Nope")


def test_features_missing_name_a_fix():
    s = output(torch.zeros(2, 3), {})
    t = output(torch.zeros(2, 3), {"x": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="FeatureExtractor"):
        strategies.build("RelationBased")(s, t)


@pytest.mark.parametrize("label,name,case", ALL, ids=IDS)
def test_teacher_outputs_made_under_inference_mode(label, name, case):
    # Teacher.predict runs under torch.inference_mode(); such tensors cannot be saved for backward as they are.
    strategy, student, teacher, labels, extra = _make(name, case)
    with torch.inference_mode():
        frozen = ModelOutput(
            logits=teacher.logits.detach().clone(),
            features=type(teacher.features)((k, v.detach().clone()) for k, v in teacher.features.items()),
            hidden_states=None
            if teacher.hidden_states is None
            else tuple(h.detach().clone() for h in teacher.hidden_states),
            attentions=None if teacher.attentions is None else tuple(a.detach().clone() for a in teacher.attentions),
        )
    assert frozen.logits.is_inference()
    expected = _call(strategy, student, teacher, labels, extra) if name != "ContrastiveBased" else None
    loss = _call(*_make(name, case)[:2], frozen, labels, extra)
    loss.backward()
    if expected is not None:
        assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-9)
