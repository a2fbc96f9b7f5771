"""A Ray Tune search: strategies × temperature/alpha schedules × learning rate, the teacher run once.

Locally:      python pipelines/tune_search.py --config search.yaml
On a cluster: ray job submit --working-dir . -- python pipelines/tune_search.py --config search.yaml

The same run as `raykd tune`: `raykd.stages.search.run_search` over one typed
`raykd.search.SearchConfig` (a run config plus its `search:` section); `--help` lists the flags.
Writes <output>/results.md, results.csv, best_config.yaml (for `raykd run --config`) and two plots.
Given the same --output again, a search whose driver died resumes without redoing finished trials.
"""

import sys

from raykd.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
