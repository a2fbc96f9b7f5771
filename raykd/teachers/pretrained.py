"""Pretrained teacher: weights from safetensors, a state_dict file, TorchScript or ONNX.

Nothing here unpickles arbitrary objects: state_dict files load with `torch.load(weights_only=True)`,
and a file that holds more than tensors is refused with a message naming the file and the fix.
ONNX models run on onnxruntime (CPUExecutionProvider by default).
"""

from __future__ import annotations

import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from raykd.outputs import FeatureExtractor, ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import to_tensor
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register

__all__ = ["PretrainedTeacher", "FORMATS", "detect_format", "export_onnx", "FEATURE_PREFIX"]

FORMATS = ("safetensors", "state_dict", "torchscript", "onnx")
FEATURE_PREFIX = "feature:"  # ONNX outputs named "feature:<layer>" come back as features
_SUFFIXES = {
    ".safetensors": "safetensors",
    ".onnx": "onnx",
    ".ts": "torchscript",
    ".torchscript": "torchscript",
    ".pt": "state_dict",
    ".pth": "state_dict",
    ".bin": "state_dict",
    ".ckpt": "state_dict",
}


def detect_format(path: str | Path) -> str:
    """Format from the extension; a `.pt`/`.pth` zip holding TorchScript code is TorchScript."""
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {path} from its extension {path.suffix!r}; "
            f"pass format= one of {FORMATS} (extensions known: {sorted(_SUFFIXES)})"
        )
    if fmt == "state_dict" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any("/code/" in n or n.endswith("constants.pkl") for n in zf.namelist()):
                return "torchscript"
    return fmt


@register("Pretrained")
class PretrainedTeacher(Teacher):
    """A frozen teacher loaded from a file.

    - `safetensors` / `state_dict`: the architecture comes from `spec` (a `raykd.models.build_model`
      spec), the weights from the file; `layers` names feature sub-modules (hooks).
    - `torchscript`: `torch.jit.load`; `num_classes` from the module's attribute or the argument.
    - `onnx`: an onnxruntime session; outputs named `feature:<layer>` (as `export_onnx` writes
      them) come back as features, the first other output is the logits.
    """

    kind = "Pretrained"

    def __init__(
        self,
        path: str,
        format: str = "auto",
        spec: dict[str, Any] | None = None,
        num_classes: int | None = None,
        layers: Iterable[str] = (),
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"Pretrained teacher: no file at {self.path}")
        self.format = detect_format(self.path) if format == "auto" else format
        if self.format not in FORMATS:
            raise ValueError(f"Pretrained format must be 'auto' or one of {FORMATS}, got {format!r}")
        self.spec = dict(spec) if spec is not None else None
        self.layers = list(layers)
        self.providers = list(providers)
        self._params = dict(path=str(path), format=format, spec=spec, num_classes=num_classes, layers=self.layers, providers=self.providers)
        self._session = None
        if self.format == "onnx":
            self._load_onnx(num_classes)
        else:
            model = self._load_torch()
            found = num_classes if num_classes is not None else getattr(model, "num_classes", None)
            if found is None:
                raise ValueError(f"Pretrained teacher {self.path}: pass num_classes= (the model does not declare it)")
            self.num_classes = int(found)
            if self.layers and self.format == "torchscript":
                raise ValueError(
                    f"Pretrained teacher {self.path}: feature layers need an eager module; TorchScript "
                    "runs without forward hooks. Load the weights as safetensors with a spec instead."
                )
            self.net = FeatureExtractor(freeze(model), self.layers)

    # ---- loading -------------------------------------------------------------------------------
    def _need_spec(self) -> dict[str, Any]:
        if self.spec is None:
            raise ValueError(
                f"Pretrained teacher {self.path}: a {self.format} file holds weights only; pass "
                "spec={'type': 'mlp', ...} (a raykd.models.build_model spec) for the architecture"
            )
        return self.spec

    def _load_torch(self) -> nn.Module:
        if self.format == "torchscript":
            try:
                return torch.jit.load(str(self.path), map_location="cpu")
            except Exception as err:  # noqa: BLE001 - re-raised with the file and the fix
                raise ValueError(
                    f"{self.path} is not a TorchScript archive ({type(err).__name__}: {err}). "
                    "Save one with torch.jit.save(torch.jit.script(model), path), or pass the right format="
                ) from err
        from raykd.models import build_model

        spec = self._need_spec()
        if self.format == "safetensors":
            from safetensors.torch import load_file

            try:
                state = load_file(str(self.path))
            except Exception as err:  # noqa: BLE001
                raise ValueError(
                    f"{self.path} is not a valid safetensors file ({type(err).__name__}: {err}). "
                    "Write it with safetensors.torch.save_file(model.state_dict(), path), or pass the "
                    "format the file really has (format='state_dict' / 'torchscript' / 'onnx')"
                ) from err
        else:
            state = self._load_state_dict_file()
        model = build_model(spec)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"weights in {self.path} do not fit the architecture spec {spec}: {err}. "
                "Pass the spec the weights were trained with"
            ) from err
        return model

    def _load_state_dict_file(self) -> dict[str, torch.Tensor]:
        import pickle

        try:
            state = torch.load(str(self.path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f"{self.path} holds pickled objects beyond tensors, so it is refused (loading it could run "
                "code). Re-save only the weights: torch.save(model.state_dict(), path) or "
                "safetensors.torch.save_file(model.state_dict(), path)"
            ) from err
        except Exception as err:  # noqa: BLE001
            raise ValueError(
                f"{self.path} is not a PyTorch state_dict file ({type(err).__name__}: {err}). "
                "Save one with torch.save(model.state_dict(), path), or pass the format the file has"
            ) from err
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]  # common trainer layout {"state_dict": ..., "epoch": ...}
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(
                f"{self.path} loads as a {type(state).__name__}, not a name→tensor state_dict. "
                "Save model.state_dict(), not the model or a training state"
            )
        return state

    def _load_onnx(self, num_classes: int | None) -> None:
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(self.path), providers=self.providers)
        except Exception as err:  # noqa: BLE001
            raise ValueError(
                f"{self.path} is not a loadable ONNX model ({type(err).__name__}: {err}). "
                "Export one with raykd.teachers.export_onnx(model, path, example_input)"
            ) from err
        self._session = session
        self._input = session.get_inputs()[0]
        outputs = [o.name for o in session.get_outputs()]
        self._feature_outputs = [o for o in outputs if o.startswith(FEATURE_PREFIX)]
        logit_outputs = [o for o in outputs if not o.startswith(FEATURE_PREFIX)]
        if not logit_outputs:
            raise ValueError(f"ONNX model {self.path} has no logits output (outputs: {outputs})")
        self._logits_output = logit_outputs[0]
        missing = [l for l in self.layers if FEATURE_PREFIX + l not in self._feature_outputs]
        if missing:
            have = [o[len(FEATURE_PREFIX):] for o in self._feature_outputs]
            raise ValueError(
                f"ONNX model {self.path} has no feature outputs for {missing} (it has {have}); "
                "re-export with export_onnx(..., layers=[...])"
            )
        last = next(o for o in session.get_outputs() if o.name == self._logits_output).shape[-1]
        found = num_classes if num_classes is not None else (last if isinstance(last, int) else None)
        if found is None:
            raise ValueError(f"ONNX model {self.path}: the class dimension is dynamic; pass num_classes=")
        self.num_classes = int(found)
        if self.spec is not None and "in_features" in self.spec:
            declared = self._input.shape[1:]
            if len(declared) == 1 and isinstance(declared[0], int) and declared[0] != self.spec["in_features"]:
                raise ValueError(
                    f"ONNX model {self.path} takes inputs of shape {self._input.shape}, but the spec says "
                    f"in_features={self.spec['in_features']}; re-export with an example input of the right "
                    "width or fix the spec"
                )

    # ---- running -------------------------------------------------------------------------------
    def forward(self, inputs: Any) -> ModelOutput:
        if self._session is None:
            return self.net(to_tensor(inputs))
        return self._run_onnx(inputs)

    def _run_onnx(self, inputs: Any) -> ModelOutput:
        x = to_tensor(inputs)
        device = x.device
        x = x.detach().cpu().float().contiguous()
        expected = self._input.shape
        bad = len(expected) != x.dim() or any(
            isinstance(e, int) and e != g for e, g in zip(expected, x.shape)
        )
        if bad:
            raise ValueError(
                f"ONNX model {self.path} expects input {self._input.name!r} of shape {expected}, got "
                f"{tuple(x.shape)}. Reshape the batch to that shape, or re-export with "
                "export_onnx(model, path, example_input) using an input of the shape you feed "
                "(the batch axis is exported as dynamic)"
            )
        names = [self._logits_output, *self._feature_outputs]
        results = self._session.run(names, {self._input.name: x.numpy()})
        out = ModelOutput(logits=torch.from_numpy(results[0]).to(device))
        for name, value in zip(self._feature_outputs, results[1:]):
            out.features[name[len(FEATURE_PREFIX):]] = torch.from_numpy(value).to(device)
        out.features = OrderedDict((k, out.features[k]) for k in self.layers) if self.layers else out.features
        return out

    def requirements(self) -> Requirements:
        if self._session is None:
            return super().requirements()
        return Requirements(memory_bytes=int(self.path.stat().st_size))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.path), "format": self.format, "spec": self.spec}

    def __reduce__(self):
        # An onnxruntime session does not pickle: rebuild from the plain params instead.
        return (_rebuild, (self._params,))


def _rebuild(params: dict[str, Any]) -> PretrainedTeacher:
    return PretrainedTeacher(**params)


class _ExportWrapper(nn.Module):
    def __init__(self, module: nn.Module, layers: list[str]) -> None:
        super().__init__()
        self.inner = module if isinstance(module, Teacher) else FeatureExtractor(module, layers)
        self.layers = layers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.inner(x)
        if isinstance(out, torch.Tensor):
            return (out,)
        return (out.logits, *(out.features[name] for name in self.layers))


def export_onnx(
    teacher_or_model: Teacher | nn.Module,
    path: str | Path,
    example_input: torch.Tensor,
    layers: Iterable[str] | None = None,
    opset_version: int = 17,
) -> Path:
    """Write an ONNX file whose batch axis is dynamic; features become `feature:<layer>` outputs.

    A raykd teacher exports the features it was built with (`layers=None`); a plain module
    exports the `layers` given. Uses the TorchScript-based exporter, which needs no onnxscript.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = teacher_or_model
    if layers is None:
        layers = list(getattr(getattr(module, "net", None), "layers", []) or [])
    layers = list(layers)
    if isinstance(module, Teacher) and layers:
        found = list(getattr(getattr(module, "net", None), "layers", []))
        if found != layers:
            raise ValueError(f"the teacher records features {found}; export_onnx was asked for {layers}")
    wrapper = _ExportWrapper(module, layers).eval()
    names = ["logits", *(FEATURE_PREFIX + name for name in layers)]
    dynamic = {"input": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example_input,),
            str(path),
            input_names=["input"],
            output_names=names,
            dynamic_axes=dynamic,
            opset_version=opset_version,
            dynamo=False,
        )
    return path
