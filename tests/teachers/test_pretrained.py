"""Pretrained: every format gives the plain model's logits; bad files fail naming file and fix."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from raykd.models import build_model
from raykd.teachers import NeuralNetworkTeacher, PretrainedTeacher, build_from_config, export_onnx

from .conftest import SPEC, train_mlp

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model():
    return train_mlp(epochs=5)


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("pretrained")
    save_file(model.state_dict(), str(d / "m.safetensors"))
    torch.save(model.state_dict(), d / "m.pt")
    scripted = build_model(SPEC)
    scripted.load_state_dict(model.state_dict())
    torch.jit.save(torch.jit.script(scripted.eval()), d / "m_script.pt")
    return d


@pytest.mark.parametrize("name,fmt", [("m.safetensors", "safetensors"), ("m.pt", "state_dict"), ("m_script.pt", "torchscript")])
def test_formats_match_plain_model(files, model, name, fmt):
    teacher = PretrainedTeacher(str(files / name), spec=SPEC)
    assert teacher.format == fmt and teacher.num_classes == 4
    x = torch.randn(7, 8)
    torch.testing.assert_close(teacher.predict(x).logits, model(x).detach(), atol=1e-6, rtol=0)


def test_features_from_spec_formats(files):
    out = PretrainedTeacher(str(files / "m.safetensors"), spec=SPEC, layers=["body.layer2"]).predict(torch.randn(3, 8))
    assert list(out.features) == ["body.layer2"] and out.features["body.layer2"].shape == (3, 16)


def test_onnx_round_trip_of_a_trained_teacher(tmp_path, model):
    teacher = NeuralNetworkTeacher(model, layers=["body.layer1"])
    x = torch.randn(5, 8)
    path = export_onnx(teacher, tmp_path / "teacher.onnx", x)
    loaded = build_from_config({"kind": "Pretrained", "path": str(path)})
    assert loaded.format == "onnx" and loaded.num_classes == 4
    y = torch.randn(11, 8)  # another batch size: the batch axis is dynamic
    ref = teacher.predict(y)
    got = loaded.predict(y)
    torch.testing.assert_close(got.logits, ref.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.features["body.layer1"], ref.features["body.layer1"], atol=1e-5, rtol=1e-5)
    again = pickle.loads(pickle.dumps(loaded))  # the session is rebuilt from the path
    torch.testing.assert_close(again.predict(y).logits, got.logits)


def test_garbage_safetensors_names_file_and_fix(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match=r"garbage\.safetensors is not a valid safetensors file.*save_file"):
        PretrainedTeacher(str(bad), spec=SPEC)


def test_pickle_that_is_not_weights_only_is_refused(tmp_path):
    bad = tmp_path / "whole_model.pt"
    torch.save({"model": build_model(SPEC)}, bad)
    with pytest.raises(ValueError, match=r"whole_model\.pt holds pickled objects.*state_dict\(\)"):
        PretrainedTeacher(str(bad), spec=SPEC)


def test_weights_that_do_not_fit_the_spec(files):
    with pytest.raises(ValueError, match=r"m\.safetensors do not fit the architecture spec"):
        PretrainedTeacher(str(files / "m.safetensors"), spec={**SPEC, "hidden": [32]})


def test_state_dict_without_spec(files):
    with pytest.raises(ValueError, match="pass spec="):
        PretrainedTeacher(str(files / "m.pt"))


def test_onnx_wrong_input_shape(tmp_path, model):
    path = export_onnx(model, tmp_path / "m.onnx", torch.randn(2, 8))
    teacher = PretrainedTeacher(str(path))
    with pytest.raises(ValueError, match=r"m\.onnx expects input 'input' of shape \['batch', 8\], got \(3, 9\).*export_onnx"):
        teacher.predict(torch.randn(3, 9))
    with pytest.raises(ValueError, match=r"m\.onnx takes inputs of shape .* in_features=9"):
        PretrainedTeacher(str(path), spec={**SPEC, "in_features": 9})


def test_unknown_extension_and_missing_file(tmp_path):
    odd = tmp_path / "weights.xyz"
    odd.write_bytes(b"0")
    with pytest.raises(ValueError, match="pass format="):
        PretrainedTeacher(str(odd), spec=SPEC)
    with pytest.raises(FileNotFoundError, match="no file at"):
        PretrainedTeacher(str(tmp_path / "missing.safetensors"), spec=SPEC)
