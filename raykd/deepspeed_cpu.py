"""DeepSpeed for ranks that may run on CPU, without the compiler work it does there unasked."""

from __future__ import annotations

from types import ModuleType

import torch

__all__ = ["import_deepspeed"]


def import_deepspeed() -> ModuleType:
    """`import deepspeed`, and on a machine without CUDA an empty table of compatible ops.

    On CPU, DeepSpeed's `init_distributed` (which `deepspeed.initialize` calls too) first probes
    every op by compiling test programs, then JIT-builds a shared-memory all-reduce from two C++
    files against torch's headers: one to three minutes of this machine's two cores per new venv,
    with every other rank waiting on the build's lock. raykd's CPU ranks only all-gather and
    all-reduce over gloo, which needs neither; CUDA ranks never build that op, so are left alone.
    """
    import deepspeed
    import deepspeed.ops

    if not torch.cuda.is_available() and "__compatible_ops__" not in vars(deepspeed.ops):
        deepspeed.ops.__compatible_ops__ = {}  # what the probe would fill; an op missing from it is not built
    return deepspeed
