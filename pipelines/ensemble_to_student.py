"""The main job: teachers → Ray Data soft targets → Ray Train student, beside a labels-only baseline.

Locally:      python pipelines/ensemble_to_student.py [--config run.yaml] [flags]
On a cluster: ray job submit --working-dir . -- python pipelines/ensemble_to_student.py [flags]

The same run as `raykd run`: stages `raykd.stages.run_distill` (data → teachers → soft targets →
students → report) over one typed `raykd.config.RunConfig`; `--help` lists the flags.
Writes <output>/report.json, report.md and, per student, metrics.csv and curves.png.
"""

import sys

from raykd.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
