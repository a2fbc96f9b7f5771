"""Tiny shared pieces for the teacher tests: a toy classification problem and trained MLPs."""

from __future__ import annotations

import pytest
import torch

from raykd.models import build_model
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

SPEC = {"type": "mlp", "in_features": 8, "hidden": [16, 16], "num_classes": 4}


def toy_problem(n: int = 512, seed: int = 0, noise: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs: 4 classes in 8 dimensions, overlapping enough that nothing is perfect."""
    centers = torch.randn(4, 8, generator=torch.Generator().manual_seed(999)) * 2.0  # one problem
    g = torch.Generator().manual_seed(seed)  # the seed picks the sample
    labels = torch.arange(n) % 4
    x = centers[labels] + noise * torch.randn(n, 8, generator=g)
    return x, labels


def train_mlp(spec: dict = SPEC, seed: int = 0, epochs: int = 30, n: int = 512) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(spec)
    x, y = toy_problem(n, seed=123)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def toy():
    return toy_problem(512, seed=123)


@pytest.fixture(scope="session")
def trained_mlp():
    return train_mlp()


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory, trained_mlp):
    """A one-member teacher checkpoint written by raykd's save_members."""
    d = tmp_path_factory.mktemp("teacher_ckpt")
    save_members(d, [MemberCheckpoint("mlp0", SPEC, trained_mlp)])
    return d


@pytest.fixture(scope="session")
def ensemble_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ensemble_ckpt")
    save_members(d, [MemberCheckpoint(f"mlp{i}", SPEC, train_mlp(seed=i, epochs=5)) for i in range(3)])
    return d
