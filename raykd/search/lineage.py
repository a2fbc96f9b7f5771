"""The schedule a Population Based Training trial's student actually followed.

A PBT trial's final weights come from a lineage: trials whose checkpoints it took over, each
trained under its own values. Ray Tune logs every take-over in the trial's `pbt_policy_<id>.txt`
(the donor's history, then one line `[tag, donor tag, iteration, donor iteration, donor config,
new config]`); the lineage trained epochs before the donor's iteration under the earlier configs
and the epochs from it under the new one. Written as piecewise schedules (one value per epoch)
with the same seed, the best trial's student can be trained again by `raykd run`.
"""

from __future__ import annotations

import json
from typing import Any

from raykd.config import RunConfig
from raykd.search.space import SearchConfig, mutations, trial_config

__all__ = ["lineage_configs", "lineage_config"]


def lineage_configs(policy: str, draw: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
    """The trial config (a draw) in force in each of `epochs` epochs along the lineage of the
    trial whose policy log holds `policy` (empty: it never took over another; `draw` throughout)."""
    lines = [json.loads(line) for line in policy.splitlines() if line.strip()]
    # From epoch `first`, `config` held (until the next change).
    changes = [(0, lines[0][4] if lines else draw)] + [(int(line[3]), line[5]) for line in lines]
    return [next(config for first, config in reversed(changes) if first <= epoch) for epoch in range(epochs)]


def lineage_config(cfg: SearchConfig, policy: str, draw: dict[str, Any]) -> RunConfig:
    """The run config of a PBT trial's student: its final draw, with each value PBT moved as a
    piecewise schedule of the lineage's values (a constant where it never changed)."""
    configs = lineage_configs(policy, draw, cfg.student.epochs)
    run = trial_config(cfg, draw)
    student = run.student.model_dump(mode="json")
    moved = mutations(cfg)
    paths = [(key, (key, "start")) for key in ("temperature", "alpha") if key in moved]
    paths += [("lr", ("lr",))] if "lr" in moved else []
    paths += [(name, ("weights", name)) for name in moved.get("weights", {})]
    for key, path in paths:
        if key != "lr" and key not in student["schedules"] and key not in student["strategy"]["params"]:
            continue  # the trial's strategy does not take it
        values = [float(_get(config, path)) for config in configs]
        student["schedules"][key] = {"kind": "piecewise", "values": values} if len(set(values)) > 1 else {"kind": "constant", "start": values[0]}
        student["strategy"]["params"].pop(key, None)  # the schedule sets it
    raw = run.model_dump(mode="json") | {"student": student}
    return RunConfig.model_validate(raw).check()


def _get(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        config = config[key]
    return config
