"""Text inputs without Ray: the scan's checks and errors, label mapping, tokenisation, the config,
the Transformer teacher's head and the classifying copy student."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from raykd.config import ConfigError, load_config
from raykd.data.inputs import InputSpec
from raykd.data.text import source_sentences, write_source_sentences
from raykd.data.text_inputs import class_ids, scan_text, tokenize, with_tokenizer
from raykd.models import build_model
from raykd.stages import Data, Run, RunError, prepare_teacher
from raykd.teachers import build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members
from raykd.teachers.transformer import packaged_minilm_dir

MINILM = str(packaged_minilm_dir())


def _parquet(path, **columns):
    pq.write_table(pa.table(columns), path)
    return path


def test_string_labels_become_sorted_class_ids_and_ids_are_row_positions(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    _parquet(folder / "b.parquet", text=["z", "y"], label=["dog", "ant"])
    _parquet(folder / "a.parquet", text=["x", "w", "v"], label=["cat", "dog", "cat"])
    inputs = scan_text(InputSpec(str(folder)), "text", 16)
    assert inputs.classes == ("ant", "cat", "dog") and inputs.num_classes == 3 and inputs.positional_ids
    assert [(f.path.rsplit("/", 1)[1], f.offset, f.rows) for f in inputs.files] == [("a.parquet", 0, 3), ("b.parquet", 3, 2)]
    assert class_ids(pa.array(["dog", "ant", "cat"]), inputs.classes).tolist() == [2, 0, 1]
    assert scan_text(InputSpec(str(folder)), "text", 16, limit=4).files[-1].rows == 1


def test_json_lines_with_integer_labels_and_an_id_column(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"id": 10 + i, "sentence": f"s{i}", "y": i % 2}) + "\n" for i in range(4)))
    inputs = scan_text(InputSpec(str(path), label_column="y"), "sentence", 16)
    assert inputs.classes is None and inputs.num_classes == 2 and inputs.id_column == "id"


@pytest.mark.parametrize(
    ("columns", "text_column", "error"),
    [
        ({"body": ["a", "b"], "label": [0, 1]}, "text", r"texts.parquet has no text column 'text' \(columns: \['body', 'label'\]\); name it with --text-column"),
        ({"text": [1, 2], "label": [0, 1]}, "text", r"text column 'text' of .*texts.parquet holds int64, not strings"),
        ({"text": ["a", "b"]}, "text", r"texts.parquet has no label column 'label' .*--label-column"),
        ({"text": ["a", "b"], "label": [0, 0]}, "text", r"label column 'label' of .*texts.parquet has fewer than 2 classes"),
        ({"text": ["a", "b"], "label": [0.5, 1.0]}, "text", r"label column 'label' .* must hold integers or strings"),
    ],
)
def test_bad_text_inputs_are_one_line_errors_naming_the_file_and_field(tmp_path, columns, text_column, error):
    path = _parquet(tmp_path / "texts.parquet", **columns)
    with pytest.raises(ValueError, match=error) as info:
        scan_text(InputSpec(str(path)), text_column, 16)
    assert "\n" not in str(info.value)


def test_tokenize_pads_with_the_teachers_pad_id_to_max_length(tmp_path):
    inputs = with_tokenizer(scan_text(InputSpec(str(_parquet(tmp_path / "t.parquet", text=["a", "b"], label=[0, 1]))), "text", 8), MINILM)
    batch = {"id": np.array([3, 4]), "text": np.array(["Hello world.", "A much longer sentence that goes past eight tokens."], dtype=object), "label": np.array([1, 0])}
    out = tokenize(batch, MINILM, 8)
    assert out["x"].dtype == np.int32 and out["x"].shape == (2, 8) and out["id"].tolist() == [3, 4]
    assert (out["x"][0, 5:] == inputs.pad_token_id).all() and (out["x"][0, :5] != inputs.pad_token_id).all() and (out["x"][1] != inputs.pad_token_id).all()


def test_the_text_config_switches_to_the_transformer_teacher_and_checks_lengths(tmp_path):
    path = str(_parquet(tmp_path / "t.parquet", text=["a", "b"], label=[0, 1]))
    cfg = load_config(["--data", path, "--text-column", "text", "--max-length", "32"])
    assert cfg.teacher.kind == "Transformer" and cfg.data.max_length == 32
    with pytest.raises(ConfigError, match=r"data.max_length \(--max-length\): 200 exceeds the student's student.model.max_positions \(128\)"):
        load_config(["--data", path, "--text-column", "text", "--max-length", "200"])
    with pytest.raises(ConfigError, match=r"teacher.kind \(--teacher-kind\): 'NeuralNetwork' must be Transformer for text inputs"):
        load_config(["--data", path, "--text-column", "text", "--teacher-kind", "NeuralNetwork"])


def test_transformer_teacher_reads_its_head_from_a_checkpoint(tmp_path):
    head = build_model({"type": "mlp", "hidden": [], "in_features": 384, "num_classes": 3})
    save_members(tmp_path / "head", [MemberCheckpoint("member0", {"type": "mlp", "hidden": [], "in_features": 384, "num_classes": 3}, head)])
    teacher = build_from_config({"kind": "Transformer", "max_length": 16, "normalize": False, "checkpoint": str(tmp_path / "head"),
                                 "output_hidden_states": False, "output_attentions": False})  # fmt: skip
    out = teacher.predict(["A sentence.", "Another one here."])
    assert teacher.num_classes == 3 and out.logits.shape == (2, 3) and out.features["embedding"].shape == (2, 384)
    wrong = build_model({"type": "mlp", "hidden": [], "in_features": 16, "num_classes": 3})
    save_members(tmp_path / "wrong", [MemberCheckpoint("member0", {"type": "mlp", "hidden": [], "in_features": 16, "num_classes": 3}, wrong)])
    with pytest.raises(ValueError, match=r"Transformer checkpoint .*wrong: its head takes 16 features but .* embeds in 384"):
        build_from_config({"kind": "Transformer", "checkpoint": str(tmp_path / "wrong")})


def test_copy_student_with_a_head_classifies_token_ids():
    student = build_model({"type": "copy_transformer", "in_features": 8, "num_classes": 3, "layers": [5], "embedding_dim": 16, "head": True})
    out = student(torch.tensor([[101, 7592, 102, 0, 0, 0, 0, 0]], dtype=torch.int32))
    assert out.logits.shape == (1, 3) and out.features["embedding"].shape == (1, 384)


def test_source_sentences_are_a_balanced_task_and_written_as_json_lines(tmp_path):
    rows = source_sentences(20, ("python", "numpy"))
    assert {label for _, label in rows} == {"python", "numpy"} and len(rows) <= 40
    path = write_source_sentences(tmp_path / "s.jsonl", 5, ("python", "sklearn"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(lines[0]) == {"text", "label"} and len(lines) <= 10
    with pytest.raises(ValueError, match=r"sources must be at least two of"):
        source_sentences(5, ("python",))


def test_a_teacher_checkpoint_of_another_class_count_is_refused_naming_it(tmp_path):
    head = {"type": "mlp", "hidden": [], "in_features": 384, "num_classes": 3}
    save_members(tmp_path / "head", [MemberCheckpoint("member0", head, build_model(head))])
    texts = str(_parquet(tmp_path / "two.parquet", text=["a", "b"], label=["no", "yes"]))
    cfg = load_config(["--data", texts, "--text-column", "text", "--max-length", "8", "--teachers", str(tmp_path / "head")])
    inputs = with_tokenizer(scan_text(InputSpec(texts), "text", 8), MINILM)
    rows = {"id": np.arange(2), "x": np.zeros((2, 8), np.int32), "label": np.array([0, 1])}
    data = Data(inputs, {}, rows, rows, False, None)  # the check comes before any split is read
    with pytest.raises(RunError, match=r"teacher.checkpoint .*head predicts 3 classes but the labels in .*two.parquet have 2; give a teacher trained on these classes"):
        prepare_teacher(Run(cfg, tmp_path / "run"), data)
