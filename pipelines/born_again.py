"""Born-Again Networks (Furlanello et al. 2018): generation g+1 learns from generation g.

Locally:      python pipelines/born_again.py [--generations 3] [--config run.yaml] [flags]
On a cluster: ray job submit --working-dir . -- python pipelines/born_again.py [flags]

The same run as `raykd born-again`: `raykd.stages.born_again.run_born_again` over one typed
`raykd.config.BornAgainConfig`. Generation 0 trains on labels; every later generation has the same
architecture, trains through the same Ray Train student loop, and learns from the frozen previous
one (the `Self` teacher kind) through its soft targets. Reports each generation's test accuracy
and that of the BAN ensemble of generations 0..g; `--help` lists the flags.
Writes <output>/report.json, report.md and, per generation, metrics.csv and curves.png.
"""

import sys

from raykd.cli import main

if __name__ == "__main__":
    sys.exit(main(["born-again", *sys.argv[1:]]))
