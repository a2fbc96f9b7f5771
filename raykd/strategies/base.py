"""What every strategy shares: its declared needs, its weight, the epoch hook, and layer pairing."""

from __future__ import annotations

from typing import Callable, Iterable, Literal, NamedTuple, Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.functional import as_target, check_finite, check_same_batch, check_weight

__all__ = ["Strategy", "FeaturePair", "REQUIREMENTS", "check_pairs", "feature_pairs", "check_shapes"]

# What a strategy may declare in `requires`; the trainer reads it to decide whether the teacher must
# run online (features, attentions, hidden states) or stored logits suffice, and whether the data
# loader must hand out sample indices (CRD's memory bank).
REQUIREMENTS = frozenset({"logits", "features", "labels", "index", "attentions", "hidden_states"})


class FeaturePair(NamedTuple):
    student_name: str
    teacher_name: str
    student: torch.Tensor  # keeps its graph
    teacher: torch.Tensor  # detached: teacher tensors never receive gradients


class Strategy(nn.Module):
    """Base of the distillation losses: `loss = strategy(student, teacher, labels=None, **extra)`.

    Subclasses set `requires` and implement `forward`. Those with learnable parts (regressors,
    embeddings, memory banks) build them from shapes: either from constructor arguments, or on the
    first call. A trainer must therefore either pass the shapes, or call `materialize(student_output,
    teacher_output)` (or run one forward) before it builds its optimizer over `strategy.parameters()`.
    """

    requires: frozenset[str] = frozenset()
    weighs_samples: bool = False
    """True for losses that are a mean of per-sample terms and take `sample_weight=` (B,) to scale
    them: what an Adaptive teacher's per-sample weights need."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = check_weight("weight", weight)
        self.epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of each epoch; strategies with schedules use it."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = epoch

    def materialize(self, student: ModelOutput, teacher: ModelOutput) -> "Strategy":
        """Build the shape-dependent submodules from one batch's outputs, without computing a loss."""
        with torch.no_grad():
            self._build(student, teacher)
        return self

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        """Create learnable parts from shapes; a no-op for strategies without any."""

    def prepare(self, teacher_outputs: Callable[[], Iterable[ModelOutput]]) -> None:
        """Called once by the trainer before distillation starts, after `materialize`.

        `teacher_outputs()` returns the teacher's outputs over the training data; strategies that
        pre-train a part on them (FactorTransfer's paraphraser) call it, the rest ignore it, so the
        teacher pass is only paid for when needed.
        """

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


def check_pairs(pairs: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]] | None:
    """Validate a user's `pairs=[(student_layer, teacher_layer), ...]`; None means the default."""
    if pairs is None:
        return None
    pairs = [tuple(p) for p in pairs]  # type: ignore[misc]
    if not pairs:
        raise ValueError("pairs is empty; give at least one (student_layer, teacher_layer) or leave it None")
    for p in pairs:
        if len(p) != 2 or not all(isinstance(n, str) for n in p):
            raise ValueError(f"each pair must be (student_layer_name, teacher_layer_name), got {p!r}")
    return pairs  # type: ignore[return-value]


def _default_pairs(
    student: ModelOutput, teacher: ModelOutput, default: Literal["zip", "last"]
) -> list[tuple[str, str]]:
    for who, out in (("student", student), ("teacher", teacher)):
        if not out.features:
            raise ValueError(
                f"this strategy needs features but the {who} output has none; wrap the model in "
                "raykd.FeatureExtractor(model, layers=[...])"
            )
    s_names, t_names = list(student.features), list(teacher.features)
    if default == "last":
        return [(s_names[-1], t_names[-1])]
    if len(s_names) != len(t_names):
        raise ValueError(
            f"cannot pair features in order: the student has {len(s_names)} {s_names} and the teacher "
            f"{len(t_names)} {t_names}; pass pairs=[(student_layer, teacher_layer), ...]"
        )
    return list(zip(s_names, t_names))


def feature_pairs(
    student: ModelOutput,
    teacher: ModelOutput,
    pairs: list[tuple[str, str]] | None,
    default: Literal["zip", "last"] = "zip",
) -> list[FeaturePair]:
    """The (student, detached teacher) feature tensors to compare, checked for batch size and NaN."""
    names = pairs if pairs is not None else _default_pairs(student, teacher, default)
    out = []
    for s_name, t_name in names:
        s, t = student.feature(s_name), as_target(teacher.feature(t_name))
        check_same_batch(s, t, what=f"features ({s_name!r} vs {t_name!r})")
        check_finite(f"student feature {s_name!r}", s)
        check_finite(f"teacher feature {t_name!r}", t)
        out.append(FeaturePair(s_name, t_name, s, t))
    return out


def check_shapes(name: str, shapes: object) -> list[tuple[int, ...]] | None:
    """Per-pair feature shapes without the batch dimension: (C, H, W), (L, D) or (D,).

    One shape may be given for a single pair. None means: infer from the first batch.
    """
    if shapes is None:
        return None
    if isinstance(shapes, int):
        shapes = [(shapes,)]
    shapes = list(shapes)  # type: ignore[arg-type]
    if shapes and all(isinstance(d, int) for d in shapes):
        shapes = [tuple(shapes)]
    out = []
    for shape in shapes:
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(shape)
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"{name} must hold shapes without the batch dimension, e.g. [(64, 8, 8)], got {shape!r}")
        out.append(shape)
    if not out:
        raise ValueError(f"{name} is empty")
    return out
