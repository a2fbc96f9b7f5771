"""Teacher checkpoints: one safetensors file per member plus a JSON manifest, in a local directory
or at a URI (`raykd.storage`), so teacher actors on any node can load them.

Weights-only by construction: nothing here unpickles, so a checkpoint from an untrusted source
cannot run code when loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load, save
from torch import nn

from raykd import storage
from raykd.models import build_model

__all__ = ["MemberCheckpoint", "save_members", "load_members", "MANIFEST"]

MANIFEST = "teachers.json"


@dataclass
class MemberCheckpoint:
    name: str
    spec: dict[str, Any]
    model: nn.Module


def save_members(directory: str | Path, members: list[MemberCheckpoint], extra: dict[str, Any] | None = None) -> str | Path:
    """Writes the members, then the manifest last: a directory with a manifest is complete."""
    fs, root = storage.resolve(directory)
    fs.create_dir(root, recursive=True)
    for m in members:
        state = {k: v.detach().contiguous().cpu() for k, v in m.model.state_dict().items()}
        storage.write_whole(fs, f"{root}/{m.name}.safetensors", save(state))
    manifest = {"members": [{"name": m.name, "spec": m.spec} for m in members], **(extra or {})}
    storage.write_whole(fs, f"{root}/{MANIFEST}", json.dumps(manifest, indent=2).encode())
    return directory


def load_members(directory: str | Path) -> tuple[list[MemberCheckpoint], dict[str, Any]]:
    try:
        manifest = json.loads(storage.read_bytes(storage.join(directory, MANIFEST)))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"teacher checkpoint directory {directory} has no {MANIFEST}; "
            "point --teachers at a directory written by raykd (or omit it to train teachers)"
        ) from None
    members = []
    for entry in manifest["members"]:
        model = build_model(entry["spec"])
        weights = storage.join(directory, f"{entry['name']}.safetensors")
        try:
            model.load_state_dict(load(storage.read_bytes(weights)))
        except FileNotFoundError:
            raise FileNotFoundError(f"teacher member {entry['name']!r}: missing weights file {weights}") from None
        members.append(MemberCheckpoint(entry["name"], entry["spec"], model))
    return members, {k: v for k, v in manifest.items() if k != "members"}

