"""CIFAR ResNets and torchvision specs: sizes, feature layers, and the config check's one-line errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from raykd.config import ConfigError, check_model_spec
from raykd.models import build_model, count_parameters
from raykd.outputs import FeatureExtractor


@pytest.mark.parametrize("name, params", [("resnet8", 78_042), ("resnet8x4", 1_210_410), ("resnet32x4", 7_410_730)])
def test_cifar_resnets_have_the_crd_sizes_and_run_on_small_images(name, params):
    model = build_model({"type": "resnet_cifar", "name": name, "in_features": 3 * 16 * 16, "num_classes": 10, "standardize": True})
    assert count_parameters(model) == params  # RepDistiller's 0.08M / 1.23M / 7.43M, less its fc bias quirks
    assert model(torch.randn(2, 3 * 16 * 16)).shape == (2, 10)


def test_feature_layers_are_the_stage_maps_and_the_pooled_embedding():
    model = build_model({"type": "resnet_cifar", "name": "resnet8x4", "in_features": 3 * 16 * 16, "num_classes": 5})
    extractor = FeatureExtractor(model, model.feature_layers)
    output = extractor(torch.randn(2, 3 * 16 * 16))
    shapes = [tuple(output.features[n].shape) for n in model.feature_layers]
    assert shapes == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 256)]


def test_cifar_mobilenetv2_half_width_runs_and_names_its_stage_maps():
    model = build_model({"type": "mobilenetv2_cifar", "in_features": 3 * 16 * 16, "num_classes": 10})
    output = FeatureExtractor(model, model.feature_layers)(torch.randn(2, 3 * 16 * 16))
    assert output.logits.shape == (2, 10) and tuple(output.features["stage7"].shape) == (2, 160, 1, 1)
    assert 500_000 < count_parameters(model) < 1_000_000  # RepDistiller's mobile_half is ~0.8M at 100 classes


def test_unknown_names_and_missing_torchvision_fail_at_config_check():
    with pytest.raises(ConfigError, match=r"^student\.model\.name: 'resnet9' is not a CIFAR ResNet; choose one of \['resnet8', "):
        check_model_spec("student.model", {"type": "resnet_cifar", "name": "resnet9"})
    with pytest.raises(ValueError, match="in_features=100 is not 3·side²"):
        build_model({"type": "resnet_cifar", "in_features": 100, "num_classes": 10})


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
def test_torchvision_spec_without_torchvision_names_the_field_and_the_fix():
    with pytest.raises(ConfigError, match=r"^teacher\.members\[0\]\.name: 'resnet18' needs torchvision.*raykd\[vision\]") as err:
        check_model_spec("teacher.members[0]", {"type": "torchvision", "name": "resnet18"})
    assert "\n" not in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed (pip install 'raykd[vision]')")
def test_torchvision_architecture_builds_without_weights():
    model = build_model({"type": "torchvision", "name": "resnet18", "in_features": 3 * 32 * 32, "num_classes": 7})
    assert model(torch.randn(2, 3 * 32 * 32)).shape == (2, 7)
    with pytest.raises(ConfigError, match="is not a torchvision architecture; choose one of"):
        check_model_spec("student.model", {"type": "torchvision", "name": "resnet9000"})
