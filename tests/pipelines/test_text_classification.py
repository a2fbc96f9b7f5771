"""The main job on text: Parquet sentences with string labels → MiniLM fine-tuned as a classifier →
top-k soft targets → a two-block copy of MiniLM with a classifier, on Ray Train."""

from __future__ import annotations

import json

import pytest

from raykd.config import load_config
from raykd.data.text import write_source_sentences
from raykd.stages import run_distill
from raykd.teachers.transformer import is_sequence_classifier

pytestmark = pytest.mark.ray

TINY = ["--max-length", "16", "--epochs", "1", "--num-workers", "1", "--k", "2", "--no-baseline",
        "--set", "teacher.fine_tune={epochs: 1, lr: 2e-4, batch_size: 8}",
        "--set", "student.model={type: copy_transformer, layers: [5], embedding_dim: 16, head: true}"]  # fmt: skip


def test_text_parquet_through_minilm_teacher_into_a_small_transformer_student(ray_session, tmp_path):
    texts = write_source_sentences(tmp_path / "texts.parquet", per_class=80, sources=("python", "sklearn", "scipy"))  # ≤ 240 rows
    report = run_distill(load_config(["--data", str(texts), "--text-column", "text", "--output", str(tmp_path / "run"), *TINY]))
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert on_disk["data"]["classes"] == 3 and on_disk["data"]["features"] == 16
    assert on_disk["teacher"]["kind"] == "Transformer" and on_disk["teacher"]["accuracy"] > 0.6  # 3 sources, chance 0.33
    assert on_disk["soft_targets"]["rows"] == on_disk["data"]["train"] and on_disk["soft_targets"]["k"] == 2
    kd = report["student"]["kd"]
    assert kd["model"]["type"] == "copy_transformer" and 0.0 <= kd["accuracy"] <= 1.0

    # The fine-tuned teacher, a sequence classifier with its tokenizer: --teachers takes it back.
    assert is_sequence_classifier(str(tmp_path / "run" / "teachers")) and (tmp_path / "run" / "teachers" / "tokenizer.json").is_file()
