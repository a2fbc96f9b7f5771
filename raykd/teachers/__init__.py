"""Teachers (`TeacherModelType`): every kind is called on a batch and returns a `ModelOutput`.

Registration happens through the explicit imports below.
"""

from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.ensemble import COMBINE_MODES, EnsembleTeacher
from raykd.teachers.neural_network import NeuralNetworkTeacher, freeze
from raykd.teachers.registry import available, build, register

__all__ = [
    "COMBINE_MODES",
    "EnsembleTeacher",
    "NeuralNetworkTeacher",
    "Requirements",
    "Teacher",
    "available",
    "build",
    "freeze",
    "register",
]
