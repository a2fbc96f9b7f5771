"""Stages for sentence-embedding distillation: packaged text → teacher embeddings → splits.

Text: `raykd.data.text.packaged_sentences()` (prose the installed packages ship), shuffled by
`data.split_seed`; the first `text.test_sentences` are held out for the report, the next
`text.val_sentences` for the per-epoch validation, the rest train. Ids are positions in that
shuffled list. Each sentence becomes one row: `id`, `x` (its token ids, padded with the pad id to
`text.max_length`).

Teacher targets: the Transformer teacher runs once over every row in the soft-target actor pool
(`raykd.soft_targets`), which stores its pooled embedding as the `features` column (float16) of
the usual resumable Parquet parts; each split then carries its rows' embeddings as `features`,
for the students that learn from stored embeddings and for the cosine every student is scored on.
Rows reach the teacher ordered by length, so a batch costs its longest sentence (`raykd.tokens`).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from raykd.data.text import packaged_sentences
from raykd.soft_targets import SoftTargetMeta, generate_soft_targets, read_parts, stored_bytes, teacher_fingerprint
from raykd.stages.run import Run, RunError
from raykd.stages.teachers import TeacherStage
from raykd.teachers import build_from_config
from raykd.models import count_parameters

__all__ = ["TextData", "embed_sentences", "prepare_text_teacher", "text_teacher_config"]

EMBEDDING = "embedding"  # the teacher feature stored and compared: its pooled sentence embedding


@dataclass
class TextData:
    """The splits as Ray Datasets (`id`, `x`, `features`) and the small arrays the stages read;
    the same fields as `raykd.stages.data.Data` where the student stage reads them."""

    splits: dict[str, Any]
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    num_features: int
    """Tokens per row (the padded length)."""
    num_classes: int
    """Width of the teacher's embedding, which the student's output matches."""
    pad_token_id: int
    soft_targets: dict[str, Any]
    standardize: bool = False
    input_stats: None = None
    source: str = "sentences from installed packages (raykd.data.text.packaged_sentences)"
    task = "embed"
    """No labels: the student's output is an embedding, scored by its cosine to the teacher's."""

    def sizes(self) -> dict[str, int]:
        return {name: int(self.splits[name].count()) for name in ("train", "val", "test")}


def text_teacher_config(run: Run, online_outputs: bool) -> dict[str, Any]:
    """The Transformer teacher of the run: mean-pooled, unnormalised embeddings of `text.max_length`
    tokens; token states and attention maps only when a strategy reads them in the workers."""
    cfg = run.cfg
    return {
        "kind": "Transformer",
        "pooling": "mean",
        "normalize": False,
        **cfg.teacher.params,
        "max_length": cfg.text.max_length,
        "output_hidden_states": online_outputs,
        "output_attentions": online_outputs,
    }


def prepare_text_teacher(run: Run, online_outputs: bool) -> TeacherStage:
    with run.stage("teachers", "Transformer teacher from teacher.params (the bundled all-MiniLM-L6-v2 by default)") as summary:
        config = text_teacher_config(run, online_outputs)
        teacher = build_from_config(config)
        if teacher.tokenizer is None or teacher.pad_token_id is None:
            raise RunError(f"teacher.params.model_dir: {teacher.model_dir} needs a tokenizer with a pad token for text distillation")
        params = count_parameters(teacher.model)
        label = f"Transformer teacher ({'/'.join(Path(teacher.model_dir).parts[-2:])})"
        summary.update({"teacher": label, "params": f"{params:,}"})
    return TeacherStage(config, label, "Transformer", params, float("nan"), [], [], teacher.model_dir)


def _tensors(values: np.ndarray) -> pa.ExtensionArray:
    """(N, d) rows as Ray Data's tensor column, which batches hand out as (B, d) arrays."""
    from ray.data.extensions import ArrowTensorArray

    return ArrowTensorArray.from_numpy(np.ascontiguousarray(values))


def _sentences(run: Run) -> list[str]:
    text = run.cfg.text
    sentences = packaged_sentences()
    random.Random(run.cfg.data.split_seed).shuffle(sentences)
    if text.sentences is not None:
        sentences = sentences[: text.sentences]
    if len(sentences) <= text.test_sentences + text.val_sentences:
        raise RunError(
            f"text.sentences: {len(sentences)} sentences leave none to train on after text.test_sentences "
            f"({text.test_sentences}) and text.val_sentences ({text.val_sentences}); use more or hold out fewer"
        )
    return sentences


def embed_sentences(run: Run, teacher: TeacherStage) -> TextData:
    """Tokenised sentences, their teacher embeddings (one teacher pass, stored), and the splits."""
    import ray.data

    text, st = run.cfg.text, run.cfg.soft_targets
    with run.stage("data", f"packaged sentences, {text.max_length} tokens") as summary:
        sentences = _sentences(run)
        built = build_from_config({**teacher.config, "output_hidden_states": False, "output_attentions": False})
        tokens = built.tokenizer(sentences, truncation=True, max_length=text.max_length, padding="max_length", return_tensors="np")
        x = tokens["input_ids"].astype(np.int32)
        ids = np.arange(len(sentences), dtype=np.int64)
        lengths = tokens["attention_mask"].sum(1)
        by_length = np.argsort(lengths, kind="stable")
        rows = pa.table({"id": ids[by_length], "x": _tensors(x[by_length])})
        summary.update({"sentences": len(sentences), "mean_tokens": round(float(lengths.mean()), 1), "cut_at_max_length": int((lengths == text.max_length).sum())})

    with run.stage("soft_targets", f"pooled {EMBEDDING} of every sentence, {st.pool_size} actor(s)") as summary:
        # The teacher's pooled embedding is both its `logits` (a bare encoder's output) and the
        # stored feature; k=1 keeps the top-k columns, which nothing reads here, one number wide.
        lean = {**teacher.config, "output_hidden_states": False, "output_attentions": False}
        meta = SoftTargetMeta(teacher=built.describe(), teacher_hash=teacher_fingerprint(built), num_classes=built.num_classes, k=1, feature=EMBEDDING)
        result = generate_soft_targets(
            ray.data.from_arrow(rows),
            functools.partial(build_from_config, lean),
            run.at("soft_targets"),
            meta,
            batch_size=st.batch_size,
            pool_size=st.pool_size,
            num_cpus=st.num_cpus,
            num_gpus=st.num_gpus,
        )
        stored = read_parts(result.path, ["id", "features"])
        order = np.argsort(stored.column("id").to_numpy())
        flat = stored.column("features").combine_chunks().flatten().to_numpy()
        embeddings = flat.reshape(len(order), -1)[order]  # row i holds id i
        summary.update({"rows": result.rows, "new_rows": result.new_rows, "bytes_per_sentence": round(stored_bytes(result.path) / result.rows, 1)})

    n_test, n_val = text.test_sentences, text.val_sentences
    parts = {"test": ids[:n_test], "val": ids[n_test : n_test + n_val], "train": ids[n_test + n_val :]}
    splits = {
        name: ray.data.from_arrow(pa.table({"id": part, "x": _tensors(x[part]), "features": _tensors(embeddings[part])})).materialize()
        for name, part in parts.items()
    }
    test = {"id": parts["test"], "x": x[parts["test"]], "features": embeddings[parts["test"]].astype(np.float32)}
    soft = {"path": result.path, "rows": result.rows, "new_rows": result.new_rows, "feature": EMBEDDING}
    return TextData(splits, {"id": parts["train"]}, test, text.max_length, built.num_classes, int(built.pad_token_id), soft)
