"""Ray Tune searches over strategies and their schedules on one set of soft targets."""

from raykd.search.space import SearchConfig, SearchSection, param_space, trial_config

__all__ = ["SearchConfig", "SearchSection", "param_space", "trial_config"]
