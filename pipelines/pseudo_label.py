"""Batch pseudo-labeling: teachers trained on scarce labels label the rest, a student learns from both.

Locally:      python pipelines/pseudo_label.py [--config run.yaml] [--unlabeled DATA] [flags]
On a cluster: ray job submit --working-dir . -- python pipelines/pseudo_label.py [flags]

The same run as `raykd pseudo-label`: `raykd.stages.pseudo_label.run_pseudo_label` (data →
teachers on the labeled fraction → pseudo-labels through the teacher actor pool → a student on
the labeled rows alone and one with the accepted pseudo-labels → report) over one typed
`raykd.config.PseudoLabelConfig`; `--help` lists the flags (e.g. `--label-fraction 0.1`,
`--threshold 0.5`, `--per-class 40`, `--seeds 0,1,2`, `--no-students`).
Writes <output>/pseudo_labels.parquet, report.json and report.md (several seeds: per seed under
<output>/seed-N, and mean ± std in the report).
"""

import sys

from raykd.cli import main

if __name__ == "__main__":
    sys.exit(main(["pseudo-label", *sys.argv[1:]]))
