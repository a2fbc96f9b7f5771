"""Entry scripts (recipes): each runs with `python pipelines/NAME.py` or `ray job submit`."""
