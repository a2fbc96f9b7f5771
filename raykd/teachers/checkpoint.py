"""Teacher checkpoints on disk: one safetensors file per member plus a JSON manifest.

Weights-only by construction: nothing here unpickles, so a checkpoint from an untrusted source
cannot run code when loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from raykd.models import build_model

__all__ = ["MemberCheckpoint", "save_members", "load_members", "MANIFEST"]

MANIFEST = "teachers.json"


@dataclass
class MemberCheckpoint:
    name: str
    spec: dict[str, Any]
    model: nn.Module


def save_members(directory: str | Path, members: list[MemberCheckpoint], extra: dict[str, Any] | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for m in members:
        state = {k: v.detach().contiguous().cpu() for k, v in m.model.state_dict().items()}
        save_file(state, str(directory / f"{m.name}.safetensors"))
    manifest = {"members": [{"name": m.name, "spec": m.spec} for m in members], **(extra or {})}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return directory


def load_members(directory: str | Path) -> tuple[list[MemberCheckpoint], dict[str, Any]]:
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"teacher checkpoint directory {directory} has no {MANIFEST}; "
            "point --teachers at a directory written by raykd (or omit it to train teachers)"
        )
    manifest = json.loads(manifest_path.read_text())
    members = []
    for entry in manifest["members"]:
        model = build_model(entry["spec"])
        weights = directory / f"{entry['name']}.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"teacher member {entry['name']!r}: missing weights file {weights}")
        model.load_state_dict(load_file(str(weights)))
        members.append(MemberCheckpoint(entry["name"], entry["spec"], model))
    return members, {k: v for k, v in manifest.items() if k != "members"}

