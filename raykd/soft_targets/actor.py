"""The teacher actor: one replica of a teacher in a Ray Data actor pool.

It builds the teacher once in `__init__`; for each batch it runs the encoder (teacher forward and
reduction, on the teacher's device) and writes the part file itself, so full teacher outputs
never cross the object store: only a one-row summary per batch does.

Throughput details (see `benchmarks/soft_targets.py`):

- CPU: torch's intra-op threads are set to `threads` (Ray starts workers with
  OMP_NUM_THREADS = the actor's whole CPUs, i.e. 1 for a fractional actor, which halves a
  2-core machine's throughput).
- GPU: inputs go through a reused pinned host buffer (one per calling thread) with a non-blocking
  copy; the forward runs under bf16 autocast (`precision="auto"`); encoders reduce outputs to
  top-k on the device, so only B·k numbers come back.
- With several calls in flight per actor (`max_concurrent_calls_per_actor > 1` with true
  multi-threading, the pipeline's default), the forward runs under a lock, one at a time, while
  the other calls take their batches off Ray Data, stage them and write their Parquet parts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Callable

import numpy as np
import torch

from raykd import storage
from raykd.soft_targets.encoders import PartEncoder
from raykd.soft_targets.store import write_part
from raykd.teachers.base import Teacher

__all__ = ["PRECISIONS", "TeacherActor", "pick_device", "pick_threads"]

PRECISIONS = ("auto", "fp32", "bf16")


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_threads(threads: int | None, replicas_per_node: int = 1) -> int:
    """`threads`, or this machine's usable cores split among the replicas that share it."""
    if threads is not None:
        return max(1, int(threads))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, replicas_per_node))


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast on CUDA for `auto`/`bf16`; full precision otherwise (CPU `auto` stays fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"soft_targets.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TeacherActor:
    """`__call__(batch) -> {"part": [name], "rows": [n]}`; the part file holds the encoder's table."""

    def __init__(
        self,
        teacher_factory: Callable[[], Teacher],
        encoder: PartEncoder,
        out_dir: str,
        device: str = "auto",
        threads: int | None = None,
        precision: str = "auto",
        compression: str = "zstd",
        replicas_per_node: int = 1,
    ) -> None:
        self.device = pick_device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(pick_threads(threads, replicas_per_node))
        elif threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        self.teacher = teacher_factory().to(self.device).eval()
        self.encoder = encoder
        self.fs, self.out_dir = storage.resolve(out_dir)  # once per actor, not per part
        self.precision = precision
        self.compression = compression
        autocast_context(self.device, precision)  # validates `precision` before the first batch
        self._forward_lock = threading.Lock()
        self._local = threading.local()  # a pinned staging buffer per calling thread

    def to_device(self, x: np.ndarray) -> torch.Tensor:
        """A batch column on the teacher's device; on CUDA through this thread's reused pinned
        buffer and a non-blocking copy. The buffer is free again once this thread's previous
        batch has come back to the host, which `__call__` waits for before it returns."""
        with warnings.catch_warnings():
            # zero-copy batches are read-only views; the tensor is only read, never written.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.from_numpy(np.asarray(x))
        if t.dtype == torch.float64:
            t = t.float()
        if self.device.type != "cuda":
            return t
        pinned = getattr(self._local, "pinned", None)
        if pinned is None or pinned.numel() < t.numel() or pinned.dtype != t.dtype:
            pinned = self._local.pinned = torch.empty(t.numel(), dtype=t.dtype, pin_memory=True)
        staged = pinned[: t.numel()].view(t.shape)
        staged.copy_(t)
        return staged.to(self.device, non_blocking=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if len(batch["id"]) == 0:
            return {"part": np.array([], dtype=str), "rows": np.array([], dtype=np.int64)}
        x = self.to_device(batch["x"])  # outside the lock: overlaps the other call's forward
        with self._forward_lock:  # one forward at a time: torch's threads (or the GPU) are the teacher's
            with autocast_context(self.device, self.precision):
                table = self.encoder(batch, x, self.teacher)
            if self.device.type == "cuda":
                torch.cuda.current_stream(self.device).synchronize()  # the staged copy is consumed
        part = write_part(table, self.out_dir, self.compression, filesystem=self.fs)
        return {"part": np.array([part]), "rows": np.array([table.num_rows], dtype=np.int64)}
