"""Distillation strategies (`DistillationStrategyType`), each a small `nn.Module` loss.

Call: `loss = strategy(student: ModelOutput, teacher: ModelOutput, labels=None, **extra)`.
Each declares what it needs in `requires` (subset of `REQUIREMENTS`). Strategies with learnable
parts build them from shapes (constructor arguments) or on the first call: run `materialize(student,
teacher)` (or one forward) before building the optimizer over the student's and the strategy's
parameters. Registration happens through the explicit imports below.
"""

from raykd.strategies.attention import AttentionBased
from raykd.strategies.base import REQUIREMENTS, Strategy
from raykd.strategies.contrastive import ContrastiveBased
from raykd.strategies.correlation import CorrelationCongruence
from raykd.strategies.detection import DetectionDistillation
from raykd.strategies.distilbert import DistilBERT
from raykd.strategies.dkd import DecoupledKD
from raykd.strategies.factor import FactorTransfer
from raykd.strategies.feature import FeatureBased
from raykd.strategies.flow import FlowBased
from raykd.strategies.hidden_state import HiddenStateDistillation, ProgressiveDistillation
from raykd.strategies.hybrid import Hybrid
from raykd.strategies.neuron_selectivity import NeuronSelectivity
from raykd.strategies.probabilistic import ProbabilisticTransfer
from raykd.strategies.registry import STRATEGIES, available, build, register
from raykd.strategies.relation import RelationBased
from raykd.strategies.response import ResponseBased
from raykd.strategies.self_distillation import SelfDistillation
from raykd.strategies.similarity import SimilarityPreserving
from raykd.strategies.variational import VariationalInformation

__all__ = [
    "STRATEGIES",
    "available",
    "build",
    "register",
    "REQUIREMENTS",
    "Strategy",
    "ResponseBased",
    "FeatureBased",
    "AttentionBased",
    "RelationBased",
    "ContrastiveBased",
    "SimilarityPreserving",
    "FlowBased",
    "ProbabilisticTransfer",
    "VariationalInformation",
    "FactorTransfer",
    "NeuronSelectivity",
    "SelfDistillation",
    "Hybrid",
    "CorrelationCongruence",
    "DecoupledKD",
    "DistilBERT",
    "HiddenStateDistillation",
    "ProgressiveDistillation",
    "DetectionDistillation",
]
