"""Sentence-embedding strategies side by side: all-MiniLM-L6-v2 into the copy student.

The sentences, the teacher and its stored pooled embeddings are made once by the shared stages
(`raykd.stages.text`); each strategy then trains the same copy student (0.246 of the teacher's
parameters) through the student stage on Ray Train, with the same steps, and is scored by its
embedding cosine to the teacher on the same held-out sentences. Strategies on the pooled embedding
read the stored embeddings; token-level ones run the teacher inside the worker. Writes
benchmarks/results/transformer_distill.md and ends with one JSON line.

    python benchmarks/transformer_distill.py [--sentences 8000] [--epochs 1]

Measured with --sentences 4000 (47 steps a strategy, 682 s in all): README, "Sentence embeddings".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from raykd.config import TransformerDistillConfig, validate  # noqa: E402
from raykd.stages import Run, open_run, train_student  # noqa: E402
from raykd.stages.text import embed_sentences, prepare_text_teacher  # noqa: E402

# label -> (strategy, params, teacher in the worker)
STRATEGIES = {
    "HiddenStateDistillation, pooled (stored)": ("HiddenStateDistillation", {}, False),
    "ProgressiveDistillation, pooled MSE (stored)": ("ProgressiveDistillation", {}, False),
    "DistilBERT cosine only, pooled (stored)": ("DistilBERT", {"alpha_ce": 0.0, "alpha_mlm": 0.0}, False),
    "HiddenStateDistillation, last block's tokens (in worker)": ("HiddenStateDistillation", {"mapping": [(2, 6)], "pool": "all"}, True),
    "DistilBERT cosine only, last block's tokens (in worker)": ("DistilBERT", {"alpha_ce": 0.0, "alpha_mlm": 0.0}, True),
    "AttentionBased, attention-map KL (in worker)": ("AttentionBased", {}, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-transformer-"))
    raw = {"output": str(work), "text": {"sentences": args.sentences}, "student": {"epochs": args.epochs}}
    base = validate(TransformerDistillConfig, raw)
    run = open_run(base, "transformer_distill")
    teacher = prepare_text_teacher(run, online_outputs=True)  # token outputs for the in-worker strategies
    data = embed_sentences(run, teacher)
    rows = []
    for label, (name, params, in_worker) in STRATEGIES.items():
        student = {**raw["student"], "strategy": {"name": name, "params": params}, "teacher_in_workers": in_worker}
        cfg = validate(TransformerDistillConfig, {**raw, "student": student})
        start = time.perf_counter()
        result = train_student(Run(cfg, run.out), data, f"student-{len(rows)}", cfg.student.strategy, teacher, train_ds=data.splits["train"])
        rows.append({"strategy": label, "embedding_cosine": result["embedding_cosine"], "params": result["params"], "seconds": round(time.perf_counter() - start, 1)})
        print(f"{label:<60} cosine {result['embedding_cosine']:.4f}  {rows[-1]['seconds']:.0f}s", flush=True)

    ratio = rows[0]["params"] / teacher.params
    sizes = data.sizes()
    steps = args.epochs * -(-sizes["train"] // base.student.batch_size)
    table = ["| strategy | held-out embedding cosine | student seconds |", "|---|---|---|"]
    table += [f"| {r['strategy']} | {r['embedding_cosine']:.4f} | {r['seconds']:.0f} |" for r in rows]
    text = (
        "# Sentence-embedding strategies (all-MiniLM-L6-v2 → copy student)\n\n"
        f"Teacher {teacher.params:,} params; student copy_transformer {rows[0]['params']:,} params (ratio {ratio:.4f}); "
        f"{sizes['train']} train / {sizes['val']} val / {sizes['test']} held-out sentences from installed packages, "
        f"{base.text.max_length} tokens; {args.epochs} epoch(s) of batch {base.student.batch_size} ({steps} steps), 1 Ray Train worker; "
        f"teacher embeddings stored once; {platform.machine()} CPU, 2 cores (shared).\n\n" + "\n".join(table) + "\n"
    )
    out = ROOT / "benchmarks" / "results" / "transformer_distill.md"
    out.write_text(text)
    print(text)
    print(json.dumps({"benchmark": "transformer_distill", "sentences": args.sentences, "epochs": args.epochs, "steps": steps, "teacher_params": teacher.params, "params_ratio": ratio, "rows": rows}))


if __name__ == "__main__":
    main()
