"""The main job on an RGB image folder: decoded and transformed in Ray Data, CIFAR ResNets, soft
targets of two replayed views per image, a student."""

from __future__ import annotations

import json

import pytest

from raykd.config import load_config
from raykd.data.digits_images import write_digits_image_folder
from raykd.stages import run_distill

pytestmark = pytest.mark.ray


def test_image_folder_to_view_soft_targets_to_a_cifar_resnet_student(ray_session, tmp_path, capsys):
    folder = write_digits_image_folder(tmp_path / "digits", size=12, per_class=6)  # 60 RGB PNGs
    (folder / "7" / "truncated.png").write_bytes(b"\x89PNG\r\n")
    small = "{type: resnet_cifar, name: resnet8}"
    cfg = load_config(
        ["--data", str(folder), "--image-size", "16", "--teacher-epochs", "1", "--epochs", "1", "--num-workers", "1",
         "--k", "3", "--views", "2", "--set", "soft_targets.flip=true", "--no-baseline", "--output", str(tmp_path / "run"),
         "--set", "data.bad_images=skip",
         "--set", f"teacher.members=[{small}]", "--set", f"student.model={small}"]
    )  # fmt: skip
    report = run_distill(cfg)
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable image(s), e.g. 7/truncated.png" in printed and "skipped_images 1" in printed
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert on_disk["data"]["classes"] == 10 and on_disk["data"]["features"] == 3 * 16 * 16
    assert sum(on_disk["data"][s] for s in ("train", "val", "test")) == 60
    assert on_disk["soft_targets"]["views"] == 2 and on_disk["soft_targets"]["k"] == 3
    assert on_disk["soft_targets"]["rows"] == 2 * on_disk["data"]["train"]  # one row per view
    assert "2 views per image (shift <= 1px, flip)" in printed and "2 stored views per image" in printed
    assert 0.0 <= report["student"]["kd"]["accuracy"] <= 1.0
