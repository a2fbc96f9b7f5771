"""FitNets between two image architectures, layers chosen by name: a CIFAR ResNet teacher and a
MobileNetV2-CIFAR student, hooked through FeatureExtractor, regressors sized from the first batch.

No Ray and no Ray Train: the models are small and the images 16×16, so this stays well under a
second (the suite's budget is already spent elsewhere).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from raykd.models import build_model
from raykd.outputs import FeatureExtractor
from raykd.strategies import FeatureBased

SIDE = 16
# (student layer, teacher layer): an early map, a late map and the pooled embeddings. The names
# differ between the two architectures, so nothing can pair them by position or by equal names.
PAIRS = [("stage3", "layer2"), ("stage5", "layer3"), ("pool", "pool")]


def _models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    teacher = build_model({"type": "resnet_cifar", "name": "resnet20", "in_features": 3 * SIDE * SIDE, "num_classes": 10})
    student = build_model({"type": "mobilenetv2_cifar", "width": 0.25, "in_features": 3 * SIDE * SIDE, "num_classes": 10})
    return teacher.eval(), student.train()


def test_feature_pairs_by_layer_name_size_the_regressors_and_train_the_student():
    teacher_net, student_net = _models()
    teacher = FeatureExtractor(teacher_net, [t for _, t in PAIRS])
    student = FeatureExtractor(student_net, [s for s, _ in PAIRS])
    for p in teacher.parameters():
        p.requires_grad_(False)
    x = torch.randn(4, 3 * SIDE * SIDE)
    with torch.no_grad():
        teacher_out = teacher(x)
    strategy = FeatureBased(pairs=PAIRS).materialize(student(x), teacher_out)

    # Regressors from the hooked shapes: MobileNet ×0.25 stage3 has 8 channels at 4×4 (its stem is
    # stride 2), resnet20's layer2 32 at 8×8; stage5 24 at 2×2 vs layer3 64 at 4×4; pooled 1280 vs 64.
    (conv_early, _), (conv_late, _), linear = strategy.regressors
    assert (conv_early.in_channels, conv_early.out_channels) == (8, 32)
    assert (conv_late.in_channels, conv_late.out_channels) == (24, 64)
    assert isinstance(linear, nn.Linear) and (linear.in_features, linear.out_features) == (1280, 64)

    # A small lr: FitNets' weight of 100 on untrained, unnormalised features makes larger Adam steps overshoot.
    optimizer = torch.optim.Adam([*student.parameters(), *strategy.parameters()], lr=3e-3)
    regressor_before = conv_early.weight.detach().clone()
    losses = []
    for _ in range(6):
        loss = strategy(student(x), teacher_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    final = strategy(student(x), teacher_out).item()
    assert final < 0.8 * losses[0], losses + [final]  # about 0.7 here
    assert not torch.equal(conv_early.weight, regressor_before)  # the regressors were in the optimizer
    assert all(p.grad is None for p in teacher.parameters())  # teacher features are targets only


def test_a_wrong_layer_name_is_a_one_line_error_listing_the_names():
    teacher_net, student_net = _models()
    with pytest.raises(KeyError) as hooked:
        FeatureExtractor(teacher_net, ["layer2", "layer4"])  # a CIFAR ResNet has three stages
    message = hooked.value.args[0]
    assert "\n" not in message and "['layer4'] not found in ResNetCIFAR" in message
    assert all(repr(name) in message for name in teacher_net.feature_layers)

    # A pair naming a layer the extractor does not hook: the strategy's lookup names it.
    teacher = FeatureExtractor(teacher_net, [t for _, t in PAIRS])
    student = FeatureExtractor(student_net, [s for s, _ in PAIRS])
    x = torch.randn(2, 3 * SIDE * SIDE)
    with pytest.raises(KeyError) as paired:
        FeatureBased(pairs=[("stage4", "layer2")])(student(x), teacher(x).detach())
    message = paired.value.args[0]
    assert "\n" not in message
    assert message.startswith("no feature named 'stage4'; this output has ['stage3', 'stage5', 'pool']")


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed (pip install 'raykd[vision]')")
def test_feature_pairs_between_two_torchvision_models_by_layer_name():
    torch.manual_seed(0)
    flat = {"in_features": 3 * 32 * 32, "num_classes": 10}
    teacher_net = build_model({"type": "torchvision", "name": "resnet18", **flat}).eval()
    student_net = build_model({"type": "torchvision", "name": "mobilenet_v3_small", **flat}).train()
    pairs = [("net.features.8", "net.layer3"), ("net.avgpool", "net.avgpool")]  # 2×2 maps at 32×32, then pooled
    teacher = FeatureExtractor(teacher_net, [t for _, t in pairs])
    student = FeatureExtractor(student_net, [s for s, _ in pairs])
    x = torch.randn(4, 3 * 32 * 32)
    with torch.no_grad():
        teacher_out = teacher(x)
    strategy = FeatureBased(pairs=pairs).materialize(student(x), teacher_out)
    (maps, _), (pooled, _) = strategy.regressors  # mobilenet_v3_small 48 → resnet18 256 at 2×2; 576 → 512 pooled
    assert (maps.in_channels, maps.out_channels, pooled.in_channels, pooled.out_channels) == (48, 256, 576, 512)
    optimizer = torch.optim.Adam([*student.parameters(), *strategy.parameters()], lr=1e-3)
    first = strategy(student(x), teacher_out)
    for _ in range(5):
        loss = strategy(student(x), teacher_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert strategy(student(x), teacher_out).item() < first.item()
