"""Teachers (`TeacherModelType`): every kind is called on a batch and returns a `ModelOutput`.

Registration happens through the explicit imports below: one module per kind.
`build(kind, **objects)` passes Python objects to the constructor; `build_from_config(dict)` takes
plain, picklable params (checkpoint directories, specs, numbers) through each kind's `from_config`,
which is what a Ray actor receives.
"""

from raykd.teachers.adaptive import AdaptiveTeacher
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.curriculum import CurriculumTeacher, pacing_fraction
from raykd.teachers.distributed import DistributedTeacher, make_shard_plan, pipeline_layers
from raykd.teachers.ensemble import COMBINE_MODES, EnsembleTeacher
from raykd.teachers.multimodal import MultiModalTeacher
from raykd.teachers.neural_network import NeuralNetworkTeacher, freeze
from raykd.teachers.online import OnlineTeacher
from raykd.teachers.pretrained import PretrainedTeacher, export_onnx
from raykd.teachers.quantized import QuantizedTeacher
from raykd.teachers.registry import available, build, build_from_config, config_params, register
from raykd.teachers.self_teacher import SelfTeacher
from raykd.teachers.transformer import TransformerTeacher

__all__ = [
    "COMBINE_MODES",
    "AdaptiveTeacher",
    "CurriculumTeacher",
    "DistributedTeacher",
    "EnsembleTeacher",
    "MultiModalTeacher",
    "NeuralNetworkTeacher",
    "OnlineTeacher",
    "PretrainedTeacher",
    "QuantizedTeacher",
    "Requirements",
    "SelfTeacher",
    "Teacher",
    "TransformerTeacher",
    "available",
    "build",
    "build_from_config",
    "config_params",
    "export_onnx",
    "freeze",
    "make_shard_plan",
    "pacing_fraction",
    "pipeline_layers",
    "register",
]
