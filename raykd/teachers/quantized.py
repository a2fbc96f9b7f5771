"""Quantized teacher: a reduced-precision replica of a teacher, with its agreement measured.

Precisions:
- `int8`: PyTorch dynamic quantisation (`torch.ao.quantization.quantize_dynamic` on `nn.Linear`):
  int8 weights, activations quantised per batch; CPU only (the fbgemm/qnnpack kernels).
- `bf16`: the whole model in bfloat16 (meant for GPUs; runs on CPU too).
- `int8_weight`, `fp8`: weight-only int8 / float8-e4m3 with one scale per output channel,
  dequantised to bf16 at matmul time; `fp8` needs CUDA (the format pays off on GPUs with FP8 units).
- `int4`: weight-only int4 through torchao (`pip install 'raykd[quantize]'`), one scale per group
  of 128 input weights (64, 32 or the whole row where the width does not divide). On CUDA the
  weights are packed two per byte for torchao's tinygemm kernel (bf16 activations, compute
  capability >= 8.0); on CPU torchao keeps the int4 values one per byte and dequantises at matmul
  time, so it is a check of the accuracy, not a saving in memory or time.
`agreement(inputs)` is the top-1 agreement with the full-precision teacher, which this replica
keeps (set `keep_reference=False` to drop it after measuring once).
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any, Iterable

import torch
from torch import nn

from raykd.outputs import FeatureExtractor, ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import base_model, teacher_from_checkpoint, to_tensor
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register

__all__ = ["QuantizedTeacher", "PRECISIONS", "WeightOnlyLinear", "quantize_model"]

PRECISIONS = ("int8", "bf16", "int8_weight", "fp8", "int4")
_BYTES = {"int8": 1, "bf16": 2, "int8_weight": 1, "fp8": 1, "int4": 0.5}


class WeightOnlyLinear(nn.Module):
    """`nn.Linear` with int8 or float8 weights and a per-output-channel scale; bf16/fp32 compute."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        w = linear.weight.detach().float()  # (out, in)
        if dtype == torch.int8:
            top = 127.0
        else:
            top = float(torch.finfo(dtype).max)
        scale = (w.abs().amax(1, keepdim=True) / top).clamp_min(1e-12)  # (out, 1)
        q = (w / scale)
        q = q.round().clamp(-top, top).to(dtype) if dtype == torch.int8 else q.to(dtype)
        self.register_buffer("qweight", q)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compute = torch.bfloat16 if x.is_cuda else torch.float32
        w = self.qweight.to(compute) * self.scale.to(compute)
        bias = None if self.bias is None else self.bias.to(compute)
        return nn.functional.linear(x.to(compute), w, bias)


def _swap_linears(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, WeightOnlyLinear(child, dtype))
        else:
            _swap_linears(child, dtype)
    return module


def _int4_weights(model: nn.Module, device: torch.device) -> nn.Module:
    # Round-to-nearest int4 with per-group scales (Dettmers & Zettlemoyer 2023, "The case for 4-bit
    # precision"): smaller groups keep outlier weights from flattening the rest of their row.
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"precision='int4' runs on 'cpu' or 'cuda', got device={str(device)!r}")
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        raise ValueError(
            "precision='int4' on CUDA needs compute capability >= 8.0 (torchao's tinygemm kernel); "
            "on this GPU use 'int8_weight' or 'bf16'"
        )
    torchao_log = logging.getLogger("torchao")
    level = torchao_log.level
    torchao_log.setLevel(logging.ERROR)  # on a CPU build, each of its CUDA kernel libraries warns it cannot load
    try:
        from torchao.quantization import FqnToConfig, Int4WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerAxis, PerGroup
    except ImportError as err:
        raise ImportError("precision='int4' needs torchao: pip install 'raykd[quantize]'") from err
    finally:
        torchao_log.setLevel(level)

    def config(linear: nn.Linear) -> Any:
        group = next((g for g in (128, 64, 32) if linear.in_features % g == 0), None)
        if device.type == "cuda" and group is not None:
            return Int4WeightOnlyConfig(group_size=group, int4_packing_format="tile_packed_to_4d",
                                        set_inductor_config=False)
        # torchao has no CPU int4 kernel; its int-x path also covers widths tinygemm's groups do not divide
        granularity = PerAxis(0) if group is None else PerGroup(group)
        return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=granularity)

    model = model.to(device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
    linears = {name: config(m) for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    if not linears:
        raise ValueError("precision='int4' quantises nn.Linear weights and this model has none; use 'bf16'")
    quantize_(model, FqnToConfig(linears), filter_fn=None)
    for name in linears:  # torchao's per-instance repr (a bound functools.partial) would make the replica unpicklable
        vars(model.get_submodule(name)).pop("extra_repr", None)
    return model


def quantize_model(model: nn.Module, precision: str, device: str | torch.device = "cpu") -> nn.Module:
    """A reduced-precision copy of `model` (the original is left untouched)."""
    device = torch.device(device)
    model = copy.deepcopy(model).eval()
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError(
                "precision='int8' (dynamic quantisation) runs on CPU only; on a GPU use 'bf16', "
                "'int8_weight' or 'fp8'"
            )
        with warnings.catch_warnings():  # torch.ao.quantization's deprecation notes
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    if precision == "bf16":
        return model.to(device=device, dtype=torch.bfloat16)
    if precision == "int8_weight":
        return _swap_linears(model, torch.int8).to(device)
    if precision == "fp8":
        if device.type != "cuda":
            raise ValueError("precision='fp8' needs a CUDA device (device='cuda'); on CPU use 'int8'")
        return _swap_linears(model, torch.float8_e4m3fn).to(device)
    if precision == "int4":
        return _int4_weights(model, device)
    raise ValueError(f"Quantized precision must be one of {PRECISIONS}, got {precision!r}")


@register("Quantized")
class QuantizedTeacher(Teacher):
    """A quantised replica of a single-network teacher; logits come back as float32."""

    kind = "Quantized"

    def __init__(
        self,
        teacher: Teacher | nn.Module,
        precision: str = "int8",
        device: str = "cpu",
        num_classes: int | None = None,
        layers: Iterable[str] = (),
        keep_reference: bool = True,
    ) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"Quantized precision must be one of {PRECISIONS}, got {precision!r}")
        model = base_model(teacher)
        layers = list(layers) or list(getattr(getattr(teacher, "net", None), "layers", []))
        found = num_classes if num_classes is not None else getattr(teacher, "num_classes", getattr(model, "num_classes", None))
        if found is None:
            raise ValueError("Quantized teacher needs num_classes (the model does not declare it)")
        self.num_classes = int(found)
        self.precision, self.device = precision, torch.device(device)
        self.param_count = sum(p.numel() for p in model.parameters())
        self.net = FeatureExtractor(freeze(quantize_model(model, precision, self.device)), layers)
        self.reference = freeze(copy.deepcopy(model)).to(self.device) if keep_reference else None
        self.measured_agreement: float | None = None

    @classmethod
    def from_config(
        cls,
        checkpoint: str,
        precision: str = "int8",
        device: str = "cpu",
        member: str | None = None,
        layers: Iterable[str] = (),
        keep_reference: bool = True,
    ) -> "QuantizedTeacher":
        teacher = teacher_from_checkpoint(checkpoint, member=member)
        return cls(teacher, precision=precision, device=device, layers=layers, keep_reference=keep_reference)

    def _input_dtype(self) -> torch.dtype:
        bf16_model = self.precision == "bf16" or (self.precision == "int4" and self.device.type == "cuda")
        return torch.bfloat16 if bf16_model else torch.float32

    def forward(self, inputs: Any) -> ModelOutput:
        x = to_tensor(inputs).to(self.device)
        x = x.to(self._input_dtype()) if x.is_floating_point() else x
        out = self.net(x)
        out.logits = out.logits.float()
        out.features = type(out.features)((k, v.float()) for k, v in out.features.items())
        return out

    @torch.inference_mode()
    def agreement(self, inputs: Any, batch_size: int = 4096) -> float:
        """Share of inputs where the quantised and the full-precision teacher pick the same class."""
        if self.reference is None:
            raise RuntimeError("agreement needs the full-precision reference: build with keep_reference=True")
        x = to_tensor(inputs).to(self.device)
        same = 0
        for s in range(0, x.shape[0], batch_size):
            chunk = x[s : s + batch_size]
            q = self(chunk).logits.argmax(-1)
            r = self.reference(chunk.float() if chunk.is_floating_point() else chunk)
            r = r.logits if isinstance(r, ModelOutput) else r
            same += int((q == r.argmax(-1)).sum())
        self.measured_agreement = same / max(1, x.shape[0])
        return self.measured_agreement

    def requirements(self) -> Requirements:
        cpu_int4 = self.precision == "int4" and self.device.type == "cpu"  # one int4 value per byte there
        weights = self.param_count * (1 if cpu_int4 else _BYTES[self.precision])
        if self.reference is not None:
            weights += self.param_count * 4
        return Requirements(num_gpus=1.0 if self.device.type == "cuda" else 0.0, memory_bytes=int(weights))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "precision": self.precision,
            "device": str(self.device),
            "agreement": self.measured_agreement,
        }
