"""Quantized: int8 and int4 replicas agree with the fp32 teacher on (almost) every input."""

from __future__ import annotations

import sys

import pytest
import torch

from raykd.teachers import NeuralNetworkTeacher, QuantizedTeacher, build_from_config

from .conftest import toy_problem

# Documented agreement: int8 dynamic quantisation of this toy MLP agrees on >= 97% of inputs.
INT8_MIN_AGREEMENT = 0.97
# int4 weights (torchao, per-row groups at these widths) agree on >= 97% too: measured 1.0 on these
# 512 inputs, 0.9995 on 4096.
INT4_MIN_AGREEMENT = 0.97


def test_int8_agreement_with_full_precision(checkpoint_dir):
    teacher = build_from_config({"kind": "Quantized", "checkpoint": str(checkpoint_dir), "precision": "int8"})
    x, _ = toy_problem(512, seed=9)
    agreement = teacher.agreement(x)
    assert agreement >= INT8_MIN_AGREEMENT
    assert teacher.describe()["agreement"] == agreement
    assert teacher.requirements().memory_bytes > 0
    assert "quantized.dynamic" in type(teacher.net.model.head).__module__


@pytest.mark.parametrize("precision", ["bf16", "int8_weight"])
def test_other_precisions_on_cpu(trained_mlp, precision):
    teacher = QuantizedTeacher(NeuralNetworkTeacher(trained_mlp, layers=["body.layer1"]), precision=precision)
    x, _ = toy_problem(256, seed=3)
    out = teacher.predict(x)
    assert out.logits.dtype == torch.float32 and out.features["body.layer1"].dtype == torch.float32
    assert teacher.agreement(x) >= 0.95


def test_int4_weights_through_torchao(checkpoint_dir):
    pytest.importorskip("torchao", reason="precision='int4' needs the quantize extra")
    teacher = build_from_config({"kind": "Quantized", "checkpoint": str(checkpoint_dir), "precision": "int4"})
    x, _ = toy_problem(512, seed=9)
    assert teacher.agreement(x) >= INT4_MIN_AGREEMENT
    weight = teacher.net.model.head.weight
    assert type(weight).__name__ == "IntxUnpackedToInt8Tensor" and weight.target_dtype == torch.int4
    assert teacher.requirements().memory_bytes == teacher.param_count * (1 + 4)  # int4 one per byte + reference


def test_int4_without_torchao_names_the_extra(trained_mlp, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)  # what a missing package imports as
    with pytest.raises(ImportError, match=r"precision='int4' needs torchao: pip install 'raykd\[quantize\]'"):
        QuantizedTeacher(trained_mlp, precision="int4")


def test_gpu_only_precisions_say_so_on_cpu(trained_mlp):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        QuantizedTeacher(trained_mlp, precision="fp8")
    with pytest.raises(ValueError, match="precision must be one of"):
        QuantizedTeacher(trained_mlp, precision="int2")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["bf16", "fp8", "int8_weight", "int4"])
def test_gpu_precisions(trained_mlp, precision):
    teacher = QuantizedTeacher(trained_mlp, precision=precision, device="cuda")
    x, _ = toy_problem(256, seed=3)
    assert teacher.agreement(x) >= 0.95
    assert teacher.requirements().num_gpus == 1.0


def test_quantizes_a_pretrained_teacher_and_refuses_an_ensemble(checkpoint_dir, ensemble_dir):
    pretrained = build_from_config({"kind": "Pretrained", "path": f"{checkpoint_dir}/mlp0.safetensors",
                                    "spec": {"type": "mlp", "in_features": 8, "hidden": [16, 16], "num_classes": 4}})
    x, _ = toy_problem(128, seed=4)
    assert QuantizedTeacher(pretrained).agreement(x) >= INT8_MIN_AGREEMENT
    with pytest.raises(TypeError, match="needs a single network"):
        QuantizedTeacher(build_from_config({"kind": "Ensemble", "checkpoint": str(ensemble_dir)}))
