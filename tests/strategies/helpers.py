"""Small fixed inputs for the strategy tests: leaf tensors, so tests can look at their .grad."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch

from raykd.outputs import ModelOutput


def leaf(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)


def output(
    logits: torch.Tensor,
    features: dict[str, torch.Tensor] | None = None,
    hidden_states: tuple[torch.Tensor, ...] | None = None,
    attentions: tuple[torch.Tensor, ...] | None = None,
) -> ModelOutput:
    return ModelOutput(
        logits=logits, features=OrderedDict(features or {}), hidden_states=hidden_states, attentions=attentions
    )


def tensors(out: ModelOutput) -> list[torch.Tensor]:
    ts = [out.logits, *out.features.values(), *(out.hidden_states or ()), *(out.attentions or ())]
    return [t for t in ts if t.requires_grad]


def attention_probs(b: int, h: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, h, length, length, generator=g, dtype=torch.float64)
    return torch.softmax(scores, dim=-1).requires_grad_(True)


class Case:
    """One strategy's constructor params, inputs and call keywords, rebuilt fresh on each call."""

    def __init__(
        self,
        params: dict[str, Any],
        make: Callable[[], tuple[ModelOutput, ModelOutput, Any, dict]],
        setup: Callable[[torch.nn.Module, ModelOutput, ModelOutput], None] | None = None,
    ) -> None:
        self.params, self.make, self.setup = params, make, setup


def _logits(b: int = 4, c: int = 5, seed: int = 0) -> torch.Tensor:
    return leaf(b, c, seed=seed)


def _labels(b: int = 4, c: int = 5) -> torch.Tensor:
    return torch.arange(b) % c


def _conv_pair() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(_logits(seed=1), {"s1": leaf(4, 3, 4, 4, seed=2), "s2": leaf(4, 4, 2, 2, seed=3)})
    t = output(_logits(seed=4), {"t1": leaf(4, 5, 8, 8, seed=5), "t2": leaf(4, 6, 2, 2, seed=6)})
    return s, t, _labels(), {}


def _embedding_pair() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(_logits(seed=1), {"s1": leaf(4, 3, 2, 2, seed=2), "emb": leaf(4, 6, seed=3)})
    t = output(_logits(seed=4), {"t1": leaf(4, 5, 2, 2, seed=5), "emb": leaf(4, 8, seed=6)})
    return s, t, _labels(), {}


def _mixed_pair() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(_logits(seed=1), {"s1": leaf(4, 3, 4, 4, seed=2), "emb": leaf(4, 6, seed=3)})
    t = output(_logits(seed=4), {"t1": leaf(4, 5, 4, 4, seed=5), "emb": leaf(4, 8, seed=6)})
    return s, t, _labels(), {}


def _flow_pair() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(_logits(seed=1), {"s1": leaf(4, 3, 4, 4, seed=2), "s2": leaf(4, 4, 2, 2, seed=3)})
    t = output(_logits(seed=4), {"t1": leaf(4, 3, 8, 8, seed=5), "t2": leaf(4, 4, 4, 4, seed=6)})
    return s, t, _labels(), {}


def _crd() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s, t, labels, _ = _embedding_pair()
    return s, t, labels, {"index": torch.tensor([0, 3, 7, 9])}


def _factor_setup(strategy: torch.nn.Module, student: ModelOutput, teacher: ModelOutput) -> None:
    strategy.materialize(student, teacher)
    strategy.pretrain_paraphraser([teacher.feature("t1").detach()], epochs=1)


def _tokens() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, 2, -100, 5, -100], [1, -100, 3, -100, -100]])
    s = output(leaf(2, 5, 7, seed=1), hidden_states=tuple(leaf(2, 5, 6, seed=10 + i) for i in range(3)))
    t = output(leaf(2, 5, 7, seed=2), hidden_states=tuple(leaf(2, 5, 6, seed=20 + i) for i in range(3)))
    return s, t, labels, {"attention_mask": mask}


def _hidden() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(leaf(2, 3, seed=1), hidden_states=tuple(leaf(2, 5, 6, seed=10 + i) for i in range(3)))
    t = output(leaf(2, 3, seed=2), hidden_states=tuple(leaf(2, 5, 8, seed=20 + i) for i in range(5)))
    return s, t, None, {"attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}


def _attentions() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(leaf(2, 3, seed=1), attentions=tuple(attention_probs(2, 2, 5, seed=10 + i) for i in range(2)))
    t = output(leaf(2, 3, seed=2), attentions=tuple(attention_probs(2, 2, 5, seed=20 + i) for i in range(4)))
    return s, t, None, {"attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}


def _detection() -> tuple[ModelOutput, ModelOutput, Any, dict]:
    s = output(
        leaf(2, 6, 3, seed=1),
        {"p3": leaf(2, 4, 4, 4, seed=2), "p4": leaf(2, 4, 2, 2, seed=3), "boxes": leaf(2, 6, 4, seed=4)},
    )
    t = output(
        leaf(2, 6, 3, seed=5),
        {"p3": leaf(2, 8, 4, 4, seed=6), "p4": leaf(2, 8, 2, 2, seed=7), "boxes": leaf(2, 6, 4, seed=8)},
    )
    mask = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 0, 1, 1, 0, 0]])
    return s, t, None, {"box_mask": mask}


CASES: dict[str, Case] = {
    "ResponseBased": Case({}, lambda: (output(_logits(seed=1)), output(_logits(seed=2)), _labels(), {})),
    "FeatureBased": Case({}, _mixed_pair),
    "AttentionBased": Case({}, _conv_pair),
    "RelationBased": Case({}, _embedding_pair),
    "ContrastiveBased": Case({"n_data": 16, "nce_k": 5, "feat_dim": 8}, _crd),
    "SimilarityPreserving": Case({}, _embedding_pair),
    "FlowBased": Case({}, _flow_pair),
    "ProbabilisticTransfer": Case({}, _embedding_pair),
    "VariationalInformation": Case({}, _mixed_pair),
    "FactorTransfer": Case({"pairs": [("s1", "t1")]}, _mixed_pair, setup=_factor_setup),
    "NeuronSelectivity": Case({}, _conv_pair),
    "SelfDistillation": Case({}, _conv_pair),
    "Hybrid": Case(
        {"components": [{"name": "ResponseBased", "weight": 0.5}, {"name": "FeatureBased", "params": {"weight": 2.0}}]},
        _mixed_pair,
    ),
    "CorrelationCongruence": Case({}, _embedding_pair),
    "DecoupledKD": Case({}, lambda: (output(_logits(seed=1)), output(_logits(seed=2)), _labels(), {})),
    "DistilBERT": Case({}, _tokens),
    "HiddenStateDistillation": Case({"mapping": "uniform", "pool": "all"}, _hidden),
    "ProgressiveDistillation": Case({"layer_mapping": [(1, 2), (2, 4)], "hidden_weight": 0.5, "pool": "all"}, _hidden),
    "DetectionDistillation": Case({}, _detection),
}

# Transformer attention mode is a separate path of AttentionBased; test_all runs it too.
EXTRA_CASES: dict[str, tuple[str, Case]] = {
    "AttentionBased[transformer]": ("AttentionBased", Case({}, _attentions)),
}
