"""Default architectures chosen from the shape of the data, not from the digits alone.

Convolutions only help when the features are pixels on a grid; on a user's tabular Parquet a CNN
would either be refused (a non-square feature count) or, worse, convolve unrelated columns that
happen to be neighbours. So image-shaped inputs get the CNN-heavy ensemble and flat features get
MLPs of different widths and depths (diversity is what makes an ensemble worth distilling).

Specs carry no sizes: `in_features` and `num_classes` come from the data when models are built.
All of them standardize their inputs (see `raykd.models.standardize`).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "IMAGE_STUDENT",
    "IMAGE_TEACHER_MEMBERS",
    "RGB_STUDENT",
    "RGB_TEACHER_MEMBERS",
    "TABULAR_STUDENT",
    "TABULAR_TEACHER_MEMBERS",
    "TEXT_STUDENT",
    "TEXT_TEACHER_HEAD",
    "default_student",
    "default_teacher_members",
]

IMAGE_TEACHER_MEMBERS: list[dict[str, Any]] = [
    {"type": "cnn", "channels": [32, 64], "dropout": 0.2, "standardize": True},
    {"type": "cnn", "channels": [16, 32], "dropout": 0.2, "standardize": True},
    {"type": "mlp", "hidden": [512], "dropout": 0.1, "standardize": True},
]
IMAGE_STUDENT: dict[str, Any] = {"type": "mlp", "hidden": [256], "standardize": True}

# RGB image folders: CIFAR ResNets small enough to train on CPUs (the CRD pair resnet32x4 →
# resnet8x4 is a spec away).
RGB_TEACHER_MEMBERS: list[dict[str, Any]] = [
    {"type": "resnet_cifar", "name": "resnet20", "standardize": True},
    {"type": "resnet_cifar", "name": "resnet14", "standardize": True},
]
RGB_STUDENT: dict[str, Any] = {"type": "resnet_cifar", "name": "resnet8", "standardize": True}

# Text: the Transformer teacher's head, a linear classifier of its pooled embedding (in_features is
# the encoder's width, set by the teachers stage), and a two-block copy of MiniLM as the student.
TEXT_TEACHER_HEAD: dict[str, Any] = {"type": "mlp", "hidden": [], "standardize": False}
TEXT_STUDENT: dict[str, Any] = {"type": "copy_transformer", "layers": [4, 5], "embedding_dim": 64, "head": True}

TABULAR_TEACHER_MEMBERS: list[dict[str, Any]] = [
    {"type": "mlp", "hidden": [256, 128], "dropout": 0.1, "standardize": True},
    {"type": "mlp", "hidden": [512], "dropout": 0.1, "standardize": True},
    {"type": "mlp", "hidden": [128, 64], "dropout": 0.1, "standardize": True},
]
TABULAR_STUDENT: dict[str, Any] = {"type": "mlp", "hidden": [64], "standardize": True}


def _is_square_image(image_shape: tuple[int, int] | None) -> bool:
    # SmallCNN only takes square images; a non-square one is treated as flat features.
    return image_shape is not None and len(image_shape) == 2 and image_shape[0] == image_shape[1]


def default_teacher_members(image_shape: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Teacher ensemble specs (fresh copies, safe to edit) for `Inputs.image_shape`."""
    return copy.deepcopy(IMAGE_TEACHER_MEMBERS if _is_square_image(image_shape) else TABULAR_TEACHER_MEMBERS)


def default_student(image_shape: tuple[int, int] | None) -> dict[str, Any]:
    """Student spec (a fresh copy) for `Inputs.image_shape`."""
    return copy.deepcopy(IMAGE_STUDENT if _is_square_image(image_shape) else TABULAR_STUDENT)
